"""Issue P7 (sync hardening), point by point, against an emulated org over HTTPS."""

from __future__ import annotations

import datetime as dt

import pytest

from opportunities.models import Activity, ActivityType, SyncCycle, SyncObjectRun, SyncState, SyncStatus
from opportunities.sync.service import sync_cycle_run
from tests.integration.sync.checks import assert_database_equals_org

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def ok_cycle(**options) -> SyncCycle:
    cycle = sync_cycle_run(**options)
    assert cycle is not None and cycle.status == SyncStatus.SUCCEEDED, cycle and cycle.error_message
    return cycle


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
