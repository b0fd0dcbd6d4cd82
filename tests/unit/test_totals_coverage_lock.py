"""A totals rebuild beside the sync (P11 case 4): a page that changes a picklist field the rebuild
is about to cover must reach the totals rows, whichever of the two commits first.

The rebuild holds the coverage row FOR UPDATE while it recomputes every row from one snapshot and
widens the coverage; a page decides whether its changes move the rows by the coverage it reads.
Read without the lock, a page applied while the rebuild runs sees the old coverage (the new field
not covered yet), skips the refresh, and the rebuild's snapshot misses the page's change: the rows
answer "has an opportunity whose Segment is Enterprise" with no one while the roles say one person,
and `coverage_is_current()` says all is well, so it never heals. Two connections (threads) ordered
by events, and the page's backend seen waiting for a lock (or done) before the other side ends.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from opportunities.models import PersonOpportunityTotals, TotalsCoverage
from opportunities.salesforce.records import FieldInfo
from opportunities.sync import apply
from opportunities.totals import coverage_is_current, picklist_key, rebuild_all_totals
from smartlists.evaluate import Clock, StoredFacts, filter_q
from smartlists.registry import Catalog
from smartlists.validation import check_definition
from tests.factories import ContactRoleFactory, OpportunityFactory, PersonFactory, field_definition
from tests.processes import wait_until

# serialized_rollback, as the sync's transactional tests have: after a plain flush, their restore
# would insert the content types the flush had already recreated.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
FIELDS = {
    name: FieldInfo(name=name, label=name, type=kind)
    for name, kind in {
        "IsDeleted": "boolean",
        "Name": "string",
        "StageName": "picklist",
        "Segment__c": "picklist",
    }.items()
}
ENTERPRISE = {
    "filter": "has_opportunity",
    "constraints": [{"field": "Segment__c", "operator": "is", "value": ["Enterprise"]}],
}


@pytest.fixture
def deal():
    """One person on one opportunity whose Segment is SMB; describe has just shown Segment__c, which
    the rows do not cover yet (the beat's rebuild is due)."""
    field_definition("Opportunity", "StageName", "Stage", "picklist", ["Prospecting", "Closed Won"])
    field_definition("Opportunity", "Segment__c", "Segment", "picklist", ["Enterprise", "SMB"])
    TotalsCoverage.objects.update_or_create(
        pk=1, defaults={"picklist_fields": ["StageName"], "activity_times": True}
    )
    opportunity = OpportunityFactory(custom_fields={"Segment__c": "SMB"}, system_modstamp=T0)
    person = PersonFactory()
    ContactRoleFactory(person=person, opportunity=opportunity)
    assert not coverage_is_current()
    return opportunity, person


def _segment_page(opportunity) -> None:
    """The sync's page: the opportunity's Segment became Enterprise."""
    record = {
        "Id": opportunity.sf_id,
        "SystemModstamp": (T0 + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "IsDeleted": False,
        "Name": opportunity.name,
        "StageName": opportunity.stage_name,
        "Segment__c": "Enterprise",
    }
    context = apply.ApplyContext(cycle=None, is_initial_load=False, counters=apply.Counters())
    apply.opportunities_apply([record], FIELDS, context)
    assert context.counters.updated == 1


class Side(threading.Thread):
    """One transaction on a connection of its own: `work` runs, `ready` is set, and the
    transaction stays open until `finish` is set (as a longer rebuild or page would)."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.ready = threading.Event()
        self.finish = threading.Event()
        self.done = threading.Event()
        self.backend: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.backend = cursor.fetchone()[0]
            with transaction.atomic():
                self.work()
                self.ready.set()
                if not self.finish.wait(120):
                    raise AssertionError("the other side never let this transaction end")
        except BaseException as error:  # reported by the test thread
            self.error = error
        finally:
            self.done.set()
            connection.close()


def _waiting_for_a_lock(side: Side) -> bool:
    if side.backend is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", [side.backend])
        return bool(cursor.fetchone()[0])


def _members_both_ways() -> tuple[set[int], set[int]]:
    """(members through the totals rows, members through the roles) of Has Opportunity, Segment is
    Enterprise."""
    from people.models import Person

    item = check_definition({"logic": "all", "filters": [ENTERPRISE]}, Catalog.load()).filters[0]
    clock = Clock(T0, dt.UTC)
    from_rows = filter_q(item, clock, lambda _: None, StoredFacts.load())
    from_roles = filter_q(item, clock, lambda _: None, None)
    return (
        set(Person.objects.filter(from_rows).values_list("pk", flat=True)),
        set(Person.objects.filter(from_roles).values_list("pk", flat=True)),
    )


@pytest.mark.parametrize("first", ["rebuild", "page"])
def test_a_picklist_change_during_a_rebuild_reaches_the_rows(deal, first):
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite runs every transaction as BEGIN IMMEDIATE (one writer at a time): a page and a "
            "rebuild never overlap there, so this race cannot exist"
        )
    opportunity, person = deal
    rebuild = Side(rebuild_all_totals)
    page = Side(lambda: _segment_page(opportunity))
    holder, other = (rebuild, page) if first == "rebuild" else (page, rebuild)
    holder.start()
    # The first side has done its work and holds its locks (the rebuild its FOR UPDATE and its
    # snapshot; the page its writes) in a transaction still open.
    wait_until(lambda: holder.ready.is_set() or holder.done.is_set(), timeout=120, what="the first side")
    assert holder.error is None, holder.error
    other.start()
    # The second side either finished inside the first one's transaction (the race) or waits for
    # its lock: then the first side may end.
    wait_until(
        lambda: other.ready.is_set() or other.done.is_set() or _waiting_for_a_lock(other),
        timeout=120,
        what="the second side to finish or wait for a lock",
    )
    holder.finish.set()
    holder.join(120)
    wait_until(lambda: other.ready.is_set() or other.done.is_set(), timeout=120, what="the second side")
    other.finish.set()
    other.join(120)
    assert holder.error is None and other.error is None, (holder.error, other.error)

    assert coverage_is_current()  # the rebuild covered Segment__c: the smart lists read the rows
    row = PersonOpportunityTotals.objects.get(person=person)
    assert row.picklist_values.get(picklist_key("Segment__c", "Enterprise")), row.picklist_values
    assert picklist_key("Segment__c", "SMB") not in row.picklist_values
    assert _members_both_ways() == ({person.pk}, {person.pk})
