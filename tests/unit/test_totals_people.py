"""Whose totals rows a changed opportunity refreshes (P11 case 4's left-overs): its roles' people
always; the people of its Added / Removed activities only when it was deleted or undeleted, the
only change that decides whether those activities count."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from opportunities.models import Activity, ActivityType, PersonOpportunityTotals, TotalsCoverage
from opportunities.salesforce.records import FieldInfo
from opportunities.sync import apply
from tests.factories import ActivityFactory, ContactRoleFactory, OpportunityFactory, PersonFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
FIELDS = {
    name: FieldInfo(name=name, label=name, type=kind)
    for name, kind in {"IsDeleted": "boolean", "Name": "string", "Amount": "currency"}.items()
}


def _page(opportunity, minutes: int, **values) -> None:
    record = {
        "Id": opportunity.sf_id,
        "SystemModstamp": (T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "IsDeleted": False,
        "Name": opportunity.name,
        "Amount": 100,
        **values,
    }
    apply.opportunities_apply(
        [record], FIELDS, apply.ApplyContext(cycle=None, is_initial_load=False, counters=apply.Counters())
    )


def _activity_people_lookups(queries) -> list[str]:
    """The queries that collect the people of an opportunity's Added / Removed activities."""
    table = Activity._meta.db_table
    return [q["sql"] for q in queries if q["sql"].startswith(f'SELECT "{table}"."person_id"')]


def test_an_amount_change_refreshes_the_roles_people_without_looking_up_activity_people():
    TotalsCoverage.objects.update_or_create(pk=1, defaults={"activity_times": True})
    opportunity = OpportunityFactory(amount=Decimal("100"), system_modstamp=T0)
    on_it, removed_earlier = PersonFactory(), PersonFactory()
    ContactRoleFactory(person=on_it, opportunity=opportunity)
    ActivityFactory(
        person=removed_earlier,
        opportunity=opportunity,
        activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY,
        occurred_at=T0,
    )
    with CaptureQueriesContext(connection) as amount_change:
        _page(opportunity, 1, Amount=250)
    assert PersonOpportunityTotals.objects.get(person=on_it).total_opty_amount == Decimal("250")
    assert _activity_people_lookups(amount_change.captured_queries) == []
    assert PersonOpportunityTotals.objects.get(person=removed_earlier).last_removed_at == T0

    # Deleted: its activities stop counting, so their people are refreshed as well.
    with CaptureQueriesContext(connection) as deletion:
        _page(opportunity, 2, Amount=250, IsDeleted=True)
    assert len(_activity_people_lookups(deletion.captured_queries)) == 1
    assert not PersonOpportunityTotals.objects.filter(person=on_it, number_of_optys__gt=0).exists()
    # Its one activity no longer counts: the refresh left no row holding it.
    assert not PersonOpportunityTotals.objects.filter(person=removed_earlier, last_removed_at=T0).exists()
