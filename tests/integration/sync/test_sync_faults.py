"""Each fault of the emulator injected during a cycle: once it clears, the database equals the org
and no activity is recorded twice."""

from __future__ import annotations

import pytest

from opportunities.models import Activity, Opportunity, SyncCycle, SyncState, SyncStatus
from opportunities.sync.service import sync_cycle_run
from people.models import Person
from tests.integration.sync.checks import assert_database_equals_org

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def cycle(**options) -> SyncCycle:
    result = sync_cycle_run(**options)
    assert result is not None
    return result


def until_success(attempts: int = 3, **options) -> SyncCycle:
    for _ in range(attempts):
        result = cycle(**options)
        if result.status == SyncStatus.SUCCEEDED:
            return result
    raise AssertionError(f"no successful cycle: {result.status} {result.error_message}")


def assert_no_activity_twice() -> None:
    keys = list(
        Activity.objects.values_list(
            "activity_type", "person_id", "opportunity_id", "field", "sf_contact_role_id", "occurred_at"
        )
    )
    assert len(keys) == len(set(keys)), "an activity was recorded twice"


@pytest.fixture
def busy_org(org, synced_settings):
    """An org synced once, then changed by its sales team, with a few pages to read."""
    org.generate(opportunities=80, people=60, seed=11)
    until_success()
    org.sales_team_act(times=40)
    org.faults(page_size=25)
    return org


FAULTS = {
    "expired session": {"expire_sessions": True},
    "request limit exceeded once": {
        "error": {
            "status": 403,
            "error_code": "REQUEST_LIMIT_EXCEEDED",
            "message": "TotalRequests Limit exceeded.",
            "times": 1,
        }
    },
    "503 twice": {
        "error": {"status": 503, "error_code": "SERVER_UNAVAILABLE", "message": "busy", "times": 2}
    },
    "500 persistently": {
        "error": {
            "status": 500,
            "error_code": "UNKNOWN_EXCEPTION",
            "message": "An unexpected error occurred.",
            "times": 12,
        }
    },
    "429 once": {"error": {"status": 429, "error_code": None, "message": "", "times": 1}},
    "slow response": {"slow": {"seconds": 1.5, "times": 2}},
    "dropped connection mid-page": {"drop_connection": {"times": 2, "path_contains": "/query/"}},
    "query timeout for wide windows": {"query_timeout_days": 0.0001},
}


# What the first cycle under each fault must do: retryable faults are absorbed by retries (the
# cycle succeeds with no error); the others end it (or the failing objects) with words.
ABSORBED = {"expired session", "503 twice", "429 once", "slow response", "dropped connection mid-page"}
FIRST_STATUS = {
    **dict.fromkeys(ABSORBED, SyncStatus.SUCCEEDED),
    "request limit exceeded once": SyncStatus.PAUSED,
    "500 persistently": SyncStatus.FAILED,
    # Every object's window times out even when split: each object fails on its own.
    "query timeout for wide windows": SyncStatus.FAILED,
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_the_database_equals_the_org_once_a_fault_clears(busy_org, fault):
    busy_org.faults(**FAULTS[fault])
    first = cycle()
    assert first.status == FIRST_STATUS[fault], first.error_message
    if fault in ABSORBED:
        assert first.error_message == ""
    else:
        assert first.error_message and "Traceback" not in first.error_message
    busy_org.clear_faults()
    busy_org.faults(page_size=25)
    # An object that kept failing waits before its next try; let that wait be over.
    SyncState.objects.update(retry_after=None)
    # Before any reconcile: everything but the roles hard-deleted this minute must be right.
    until_success()
    assert_database_equals_org(busy_org, before_getdeleted=True)
    assert_no_activity_twice()
    # Contact roles the sales team deleted directly are hard deletes: only getDeleted (whole
    # minutes) or the id reconciliation sees them, so this cycle reconciles.
    until_success(reconcile=True)
    assert_database_equals_org(busy_org)
    assert_no_activity_twice()
    again = until_success()
    assert sum(r.created_count + r.updated_count + r.deleted_count for r in again.object_runs.all()) == 0


def test_a_persistent_error_fails_the_cycle_with_words_a_person_understands(busy_org):
    busy_org.faults(
        error={
            "status": 503,
            "error_code": "SERVER_UNAVAILABLE",
            "message": "Server down for maintenance",
            "times": 50,
        }
    )
    failed = cycle()
    assert failed.status == SyncStatus.FAILED
    assert (
        failed.error_message.startswith("composite: ")
        or "Server down for maintenance" in failed.error_message
    )
    assert "503" in failed.error_message


def test_the_quota_guard_pauses_cycles_and_they_resume(busy_org, synced_settings):
    busy_org.faults(api_usage={"used": 8500, "max": 10_000})
    # This cycle learns the usage (85%) from Sforce-Limit-Info; it may stop before further pages.
    assert cycle().status in (SyncStatus.SUCCEEDED, SyncStatus.PAUSED)
    paused = cycle()
    assert paused.status == SyncStatus.PAUSED
    assert "SALESFORCE_QUOTA_PAUSE" in paused.error_message
    assert paused.api_calls <= 1
    busy_org.faults(api_usage={"used": 0, "max": 100_000})
    SyncCycle.objects.filter(status=SyncStatus.PAUSED).update(started_at=paused.started_at.replace(year=2000))
    until_success(reconcile=True)
    assert_database_equals_org(busy_org)


def test_request_limit_exceeded_ends_the_cycle_cleanly(busy_org):
    busy_org.faults(api_usage={"used": 100_000, "max": 100_000})
    stopped = cycle()
    assert stopped.status == SyncStatus.PAUSED
    assert "daily API limit is used up" in stopped.error_message
    assert cycle().api_calls == 0  # while paused, no call is spent
    busy_org.faults(api_usage={"used": 0, "max": 100_000})
    # Five minutes later the guard looks at limits/ again (one call) and the sync resumes.
    SyncCycle.objects.filter(status=SyncStatus.PAUSED).update(
        started_at=stopped.started_at.replace(year=2000)
    )
    until_success(reconcile=True)
    assert_database_equals_org(busy_org)


def test_late_commits_are_caught_by_the_lookback(busy_org):
    until_success()
    [late] = busy_org.create(
        "Opportunity",
        {"Name": "Late", "StageName": "Prospecting", "CloseDate": "2031-01-01"},
        backdate_seconds=30,
    )
    until_success()  # no reconcile: the lookback alone must find it
    assert Opportunity.objects.filter(sf_id=late).exists()
    assert_database_equals_org(busy_org, before_getdeleted=True)
    until_success(reconcile=True)
    assert_database_equals_org(busy_org)


def test_many_rows_sharing_one_system_modstamp_across_a_page_boundary(busy_org):
    until_success()
    busy_org.faults(page_size=3)
    ids = busy_org.create("Contact", *[{"LastName": f"Tied {n}"} for n in range(10)], same_modstamp=True)
    until_success()  # no reconcile: paging alone must bring every tied row
    assert Person.objects.filter(sf_contact_id__in=ids).count() == 10
    assert_database_equals_org(busy_org, before_getdeleted=True)
    until_success(reconcile=True)
    assert_database_equals_org(busy_org)


def test_the_api_budget_a_first_load_stops_at_the_pause_threshold_and_resumes(org, synced_settings):
    """A first load of many pages crosses SALESFORCE_QUOTA_PAUSE on the way: it stops there
    (no more pages are read) and a later cycle, with quota again, finishes it."""
    org.generate(opportunities=300, people=100, seed=5)
    org.faults(page_size=200, api_usage={"used": 8_495, "max": 10_000})
    paused = cycle()
    assert paused.status == SyncStatus.PAUSED and "Paused mid-cycle" in paused.error_message
    assert paused.api_calls < 20  # it stopped reading; the whole load takes far more calls
    org.faults(api_usage={"used": 0, "max": 100_000})
    SyncCycle.objects.filter(status=SyncStatus.PAUSED).update(started_at=paused.started_at.replace(year=2000))
    until_success(reconcile=True)
    assert_database_equals_org(org)
