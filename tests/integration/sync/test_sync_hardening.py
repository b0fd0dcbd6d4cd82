"""Issue P7 (sync hardening), point by point, against an emulated org over HTTPS."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from opportunities.models import (
    Activity,
    ActivityType,
    ContactRole,
    FieldDefinition,
    Opportunity,
    SyncCycle,
    SyncLease,
    SyncObjectRun,
    SyncState,
    SyncStatus,
)
from opportunities.salesforce.auth import SalesforceConfig
from opportunities.salesforce.client import SalesforceClient
from opportunities.sync import service
from opportunities.sync.apply import opportunity as opportunity_apply
from opportunities.sync.engine import SyncEngine
from opportunities.sync.lock import SyncLeaseLost, SyncLock
from people.models import Person
from tests.integration.sync.checks import activity_keys, assert_database_equals_org, ok_cycle

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _minute(minutes_ago: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=minutes_ago)


@pytest.fixture(autouse=True)
def org_with_history(org):
    """The org's delete log reaches back a day, as a real org's does (a fresh emulated org's
    starts now, which would make every getDeleted window look purged)."""
    org.faults(earliest_date_available=_minute(24 * 60).strftime("%Y-%m-%dT%H:%M:%S.000+0000"))


def test_getdeleted_as_documented_never_asks_for_a_one_minute_window(org, synced_settings):
    synced_settings.SALESFORCE_DELETED_INTERVAL = 60
    ok_cycle()
    checked_until = _minute(1)
    SyncState.objects.update(deleted_checked_until=checked_until)
    cycle = ok_cycle()
    # A one-minute window is refused by Salesforce; asking for it would force a reconcile. The
    # check waits for a window of two minutes (or took one, if the minute turned meanwhile).
    assert not cycle.reconciled
    assert all(d >= checked_until for d in SyncState.objects.values_list("deleted_checked_until", flat=True))


def test_getdeleted_as_documented_a_refusal_for_one_object_reconciles_only_that_object(org, synced_settings):
    ok_cycle()
    SyncState.objects.update(deleted_checked_until=_minute(5))
    org.faults(
        error={
            "status": 400,
            "error_code": "INVALID_REPLICATION_DATE",
            "message": "startDate cannot be more than 15 days ago",
            "path_contains": "sobjects/Lead/deleted",
            "in_composite": True,
        }
    )
    cycle = ok_cycle()
    assert cycle.reconciled
    reconciled = SyncObjectRun.objects.filter(cycle=cycle, window_start__isnull=True)
    assert list(reconciled.values_list("sobject", flat=True)) == ["Lead"]


def test_getdeleted_as_documented_each_hard_delete_keeps_its_own_deleted_date(org, synced_settings):
    ann, bob = org.create("Contact", {"LastName": "Ann"}, {"LastName": "Bob"})
    [deal] = org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    ann_role, bob_role = org.create(
        "OpportunityContactRole",
        {"OpportunityId": deal, "ContactId": ann},
        {"OpportunityId": deal, "ContactId": bob},
        backdate_seconds=300,  # the roles existed before they were deleted
    )
    ok_cycle()
    SyncState.objects.update(deleted_checked_until=_minute(6))
    org.delete("OpportunityContactRole", ann_role, backdate_seconds=200)
    org.delete("OpportunityContactRole", bob_role, backdate_seconds=80)
    ok_cycle()
    removed = dict(
        Activity.objects.filter(activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY).values_list(
            "person__sf_contact_id", "occurred_at"
        )
    )
    assert set(removed) == {ann, bob}
    assert dt.timedelta(seconds=100) <= removed[bob] - removed[ann] <= dt.timedelta(seconds=140)
    assert_database_equals_org(org)


def _wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _a_backend_waits_for_a_lock() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return bool(cursor.fetchone()[0])


def test_exactly_once_two_cycles_forced_to_overlap_record_each_activity_once(
    org, synced_settings, monkeypatch
):
    """Cycle A stops in the middle of writing a changed opportunity (after reading what is stored)
    for longer than its lease; cycle B starts meanwhile on the same window. Whatever the order the
    database lets them finish in, every change is recorded once."""
    synced_settings.SALESFORCE_SYNC_LOCK_SECONDS = 1
    ann, bob = org.create("Contact", {"LastName": "Ann"}, {"LastName": "Bob"})
    [deal] = org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    org.create(
        "OpportunityContactRole",
        {"OpportunityId": deal, "ContactId": ann},
        {"OpportunityId": deal, "ContactId": bob},
    )
    ok_cycle()
    org.update("Opportunity", {"Id": deal, "StageName": "Negotiation", "Amount": 5000})

    paused, resume, b_started = threading.Event(), threading.Event(), threading.Event()
    changes = opportunity_apply._opportunity_changes

    def pausing_changes(*args):
        if threading.current_thread().name == "cycle-A" and not paused.is_set():
            paused.set()
            resume.wait(60)
        return changes(*args)

    monkeypatch.setattr(opportunity_apply, "_opportunity_changes", pausing_changes)
    cycles: dict[str, SyncCycle | None] = {}

    def run(name: str) -> None:
        try:
            if name == "B":
                b_started.set()
            deadline = time.monotonic() + 60
            cycle = None
            while cycle is None and time.monotonic() < deadline:  # stands down while A holds it
                cycle = SyncEngine(SalesforceClient(SalesforceConfig.from_settings())).run_cycle()
                if cycle is None:
                    time.sleep(0.05)
            cycles[name] = cycle
        finally:
            connection.close()

    a = threading.Thread(target=run, args=("A",), name="cycle-A")
    a.start()
    assert paused.wait(60)
    b = threading.Thread(target=run, args=("B",), name="cycle-B")
    b.start()
    # B either runs to its end (nothing stops it) or waits on A's open write; SQLite has one writer.
    _wait_until(
        lambda: (
            not b.is_alive()
            or _a_backend_waits_for_a_lock()
            or (connection.vendor == "sqlite" and b_started.is_set())
        )
    )
    resume.set()
    a.join(90)
    b.join(90)
    assert not a.is_alive() and not b.is_alive()
    assert any(c is not None and c.status == SyncStatus.SUCCEEDED for c in cycles.values())
    keys = activity_keys()
    assert len(keys) == len(set(keys)), "an activity was recorded twice"
    updates = Activity.objects.filter(activity_type=ActivityType.OPPORTUNITY_UPDATED)
    fields = {
        p: sorted(updates.filter(person__sf_contact_id=p).values_list("field", flat=True)) for p in (ann, bob)
    }
    assert "StageName" in fields[ann] and fields[ann] == fields[bob]
    ok_cycle()
    assert_database_equals_org(org)


def test_exactly_once_a_holder_that_lost_its_lease_writes_nothing(db, settings):
    first = SyncLock(lease_seconds=0.2, heartbeat=False)
    assert first.acquire()
    _wait_until(lambda: SyncLease.objects.get().expires_at < timezone.now())
    second = SyncLock(lease_seconds=60, heartbeat=False)
    assert second.acquire() and second.token > first.token
    with pytest.raises(SyncLeaseLost), first.fenced():
        SyncState.objects.create(sobject="Opportunity")  # never committed
    assert not SyncState.objects.exists()
    first.release()  # cannot free the lease it lost
    assert not SyncLock(heartbeat=False).acquire()
    second.release()
    assert SyncLock(heartbeat=False).acquire()


def test_exactly_once_the_same_change_applied_by_two_workers_is_recorded_once(org, synced_settings):
    """What two workers that both read the stored row before either wrote would do: apply the same
    page twice from the same stored state. The unique key keeps the second record out."""
    [ann] = org.create("Contact", {"LastName": "Ann"})
    [deal] = org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": ann})
    ok_cycle()
    stored = Opportunity.objects.filter(sf_id=deal).values("stage_name", "system_modstamp").get()
    org.update("Opportunity", {"Id": deal, "StageName": "Negotiation"})
    ok_cycle()
    Opportunity.objects.filter(sf_id=deal).update(**stored)  # the second worker's view of the row
    ok_cycle(reconcile=False)
    SyncState.objects.update(watermark=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    ok_cycle()
    stage = Activity.objects.filter(activity_type=ActivityType.OPPORTUNITY_UPDATED, field="StageName")
    assert stage.count() == 1


def test_exactly_once_every_salesforce_call_has_a_timeout(org, synced_settings):
    synced_settings.SALESFORCE_READ_TIMEOUT = 0.5
    service._clients.clear()
    org.faults(slow={"seconds": 3, "times": 1})
    cycle = ok_cycle()  # the slow call timed out and was retried, instead of hanging
    assert cycle.status == SyncStatus.SUCCEEDED
    assert SalesforceConfig.from_settings().read_timeout == 0.5


def test_every_waiting_role_links_when_a_lead_is_converted_into_its_contact(org, synced_settings):
    """The role's contact is invisible to the integration user; a lead OppSync knows is converted
    into that contact. The lead's person is that contact's person now: the role links to it."""
    [lead] = org.create("Lead", {"LastName": "Lee", "Company": "Leads"})
    [contact] = org.create("Contact", {"LastName": "Lee"})
    org.set_visible("Contact", [contact], False)
    [deal] = org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact, "Role": "Buyer"})
    ok_cycle()
    assert ContactRole.objects.get().person is None
    org.convert_lead(lead, contact_id=contact, create_opportunity=False)
    ok_cycle()
    person = Person.objects.get(sf_lead_id=lead)
    assert ContactRole.objects.get().person == person
    added = Activity.objects.filter(activity_type=ActivityType.ADDED_TO_OPPORTUNITY)
    assert list(added.values_list("person", "role")) == [(person.pk, "Buyer")]
    org.set_visible("Contact", [contact], True)
    ok_cycle(reconcile=True)  # a sharing change bumps no SystemModstamp: the reconcile finds it
    assert Person.objects.filter(sf_contact_id=contact).get() == person
    assert added.count() == 1
    assert_database_equals_org(org)


def test_every_waiting_role_links_and_merges_move_roles_without_a_removed_added_pair(org, synced_settings):
    master, loser = org.create("Contact", {"LastName": "Master"}, {"LastName": "Loser"})
    [deal] = org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": loser, "Role": "Buyer"})
    ok_cycle()
    org.merge("Contact", master, loser)
    ok_cycle()
    master_person = Person.objects.get(sf_contact_id=master)
    assert ContactRole.objects.get().person == master_person
    assert not Activity.objects.filter(activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY).exists()
    # The loser's history (its one Added) moved to the master; nothing new was recorded.
    added = Activity.objects.filter(activity_type=ActivityType.ADDED_TO_OPPORTUNITY)
    assert list(added.values_list("person", flat=True)) == [master_person.pk]
    assert_database_equals_org(org)


def _fail_in_composite(org, path_contains: str, error_code: str, status: int = 400) -> None:
    org.faults(
        error={
            "status": status,
            "error_code": error_code,
            "message": f"injected {error_code}",
            "path_contains": path_contains,
            "in_composite": True,
            "times": 1000,
        }
    )


def test_one_objects_failure_is_that_objects_failure_lead_unreadable(org, synced_settings, admin_client):
    """The integration user cannot read Lead: the other three objects sync, the status page says
    which object fails and why, and Lead waits (doubling) instead of failing every cycle."""
    org.generate(opportunities=20, people=15, seed=3)
    _fail_in_composite(org, "sobjects/Lead/describe", "NOT_FOUND", 404)
    first = ok_cycle()
    assert "Lead" in first.error_message
    assert Opportunity.objects.count() == 20 and ContactRole.objects.exists()
    lead = SyncState.objects.get(sobject="Lead")
    assert lead.failure_count == 1 and lead.retry_after > timezone.now() and "NOT_FOUND" in lead.last_error
    assert Person.objects.filter(sf_lead_id__isnull=False).count() == 0

    second = ok_cycle()  # Lead is waiting: not asked for at all
    assert not SyncObjectRun.objects.filter(cycle=second, sobject="Lead").exists()
    assert SyncObjectRun.objects.filter(cycle=second, status=SyncStatus.SUCCEEDED).count() == 3
    page = admin_client.get("/admin/sync-status/panel/").content.decode()
    assert 'data-sobject-error="Lead"' in page and "Lead is not syncing" in page and "NOT_FOUND" in page

    SyncState.objects.filter(sobject="Lead").update(retry_after=timezone.now())
    ok_cycle()
    assert SyncState.objects.get(sobject="Lead").failure_count == 2  # still failing: the wait doubles
    lead = SyncState.objects.get(sobject="Lead")
    assert lead.retry_after - timezone.now() > dt.timedelta(seconds=90)

    org.clear_faults()
    SyncState.objects.filter(sobject="Lead").update(retry_after=timezone.now())
    ok_cycle()
    lead = SyncState.objects.get(sobject="Lead")
    assert (lead.failure_count, lead.retry_after, lead.last_error) == (0, None, "")
    assert Person.objects.filter(sf_lead_id__isnull=False).exists()
    ok_cycle(reconcile=True)
    assert_database_equals_org(org)


def test_one_objects_failure_is_that_objects_failure_query_keeps_timing_out(org, synced_settings):
    org.generate(opportunities=10, people=8, seed=4)
    ok_cycle()
    org.update("Opportunity", {"Id": org.records("Opportunity")[0]["Id"], "Name": "Renamed"})
    # Every Lead query times out, whatever the window: in the composite and when split.
    _fail_in_composite(org, "FROM+Lead", "QUERY_TIMEOUT")
    org.faults(
        error={
            "status": 400,
            "error_code": "QUERY_TIMEOUT",
            "message": "timeout",
            "path_contains": "/query",
            "times": 1000,
        }
    )
    cycle = ok_cycle()
    assert "Lead" in cycle.error_message
    assert Opportunity.objects.filter(name="Renamed").exists()
    assert SyncObjectRun.objects.get(cycle=cycle, sobject="Lead").status == SyncStatus.FAILED
    assert SyncState.objects.get(sobject="Lead").retry_after > timezone.now()


def test_the_api_budget_composite_itself_keeps_to_25_subrequests_and_5_queries(org, synced_settings):
    client = SalesforceClient(SalesforceConfig.from_settings())
    subrequests = [(f"query{n}", client.query_url("SELECT Id FROM Contact")) for n in range(7)]
    subrequests += [(f"describe{n}", client.describe_url("Lead")) for n in range(20)]
    before = client.calls
    results = client.composite(subrequests)  # one call would be refused: 27 subrequests, 7 queries
    assert list(results) == [ref for ref, _ in subrequests]
    assert all(result.status == 200 for result in results.values())
    assert client.calls - before == 2


def test_the_orgs_clock_not_ours_a_host_clock_ahead_skips_no_commit(org, synced_settings, admin_client):
    """This host's clock runs ten minutes ahead of the org's. Windows and watermarks follow the
    org's clock (the Date header), so what commits in the org meanwhile is read next cycle."""
    org.faults(clock_offset_seconds=-600)
    [ann] = org.create("Contact", {"LastName": "Ann"})
    first = ok_cycle()
    assert first.clock_skew_seconds is not None and 595 <= first.clock_skew_seconds <= 605
    assert max(SyncState.objects.values_list("watermark", flat=True)) < timezone.now() - dt.timedelta(
        minutes=9
    )
    [bob] = org.create("Contact", {"LastName": "Bob"})  # stamped in the org's present
    ok_cycle()
    assert set(Person.objects.values_list("sf_contact_id", flat=True)) == {ann, bob}
    page = admin_client.get("/admin/sync-status/panel/").content.decode()
    assert "ahead of Salesforce" in page
    ok_cycle(reconcile=True)
    assert_database_equals_org(org)


def test_formula_fields_stay_fresh_with_the_daily_reconcile(org, synced_settings):
    """Calculated fields change without a SystemModstamp bump (a formula over another record):
    no window sees them; the reconcile reads just those fields and records the change."""
    org.add_field("Opportunity", "Health__c", "double", calculated=True)
    [ann] = org.create("Contact", {"LastName": "Ann"})
    [deal] = org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2031-01-01", "Amount": 1000}
    )
    org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": ann})
    ok_cycle()
    assert FieldDefinition.objects.get(sobject="Opportunity", api_name="Health__c").is_calculated
    org.set_values_silently("Opportunity", "Health__c", {deal: 42})
    org.set_values_silently("Opportunity", "ExpectedRevenue", {deal: 777})
    assert not ok_cycle().reconciled  # a plain cycle cannot see them
    assert Opportunity.objects.get(sf_id=deal).custom_fields.get("Health__c") is None
    ok_cycle(reconcile=True)
    opportunity = Opportunity.objects.get(sf_id=deal)
    assert opportunity.custom_fields["Health__c"] == 42 and opportunity.expected_revenue == 777
    updates = Activity.objects.filter(
        activity_type=ActivityType.OPPORTUNITY_UPDATED, person__sf_contact_id=ann
    )
    assert sorted(updates.values_list("field", "new_value")) == [("ExpectedRevenue", 777), ("Health__c", 42)]
    assert_database_equals_org(org)
    ok_cycle(reconcile=True)  # nothing changed since: nothing recorded again
    assert updates.count() == 2


def test_one_objects_failure_is_that_objects_failure_account_name_unreadable(
    org, synced_settings, admin_client
):
    """The user cannot read Account.Name (describe still shows AccountId): Opportunity and Contact
    sync without the account name instead of failing, the status page and the API say so, the
    path is not asked for again every cycle, and when it becomes readable its values are filled in."""
    org.generate(opportunities=12, people=10, seed=8)
    org.hide_field("Account", "Name")
    first = ok_cycle()
    assert first.status == SyncStatus.SUCCEEDED
    assert Opportunity.objects.count() == 12 and ContactRole.objects.exists()
    assert not Opportunity.objects.exclude(account_name="").exists()
    for sobject in ("Opportunity", "Contact"):
        state = SyncState.objects.get(sobject=sobject)
        assert list(state.unreadable_paths) == ["Account.Name"] and state.failure_count == 0
    page = admin_client.get("/admin/sync-status/panel/").content.decode()
    assert 'data-sobject-unreadable="Opportunity"' in page and "syncs without Account.Name" in page
    status = admin_client.get("/api/v1/sync/status/").json()
    by_object = {o["sobject"]: o for o in status["objects"]}
    assert by_object["Opportunity"]["unreadable_fields"] == ["Account.Name"]

    deal = Opportunity.objects.first().sf_id
    org.update("Opportunity", {"Id": deal, "StageName": "Negotiation"})
    calls_before = org.api_calls()
    ok_cycle()  # the path is left out: no failing query, no describe-and-retry
    assert org.api_calls() - calls_before <= 2
    assert Opportunity.objects.get(sf_id=deal).stage_name == "Negotiation"

    org.hide_field("Account", "Name", hidden=False)
    a_day_ago = (timezone.now() - dt.timedelta(days=1, minutes=1)).isoformat()
    SyncState.objects.filter(sobject__in=["Opportunity", "Contact"]).update(
        unreadable_paths={"Account.Name": a_day_ago}
    )
    ok_cycle()  # the daily retry reads it, and the names that were missing are filled in
    assert SyncState.objects.get(sobject="Opportunity").unreadable_paths == {}
    ok_cycle()
    assert_database_equals_org(org)
