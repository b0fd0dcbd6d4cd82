"""First loads on Bulk API 2.0 (P11 case 7), through the emulator over HTTPS.

A Bulk 2.0 query job carries no ORDER BY (the API does not support it; the emulator refuses it as
Salesforce documents), and a QUERY_TIMEOUT anywhere a window is read (the Bulk job, its REST
fallback, the query again after INVALID_FIELD) splits the window into halves that commit their watermarks, instead of failing the
object so that every backoff retries the whole load from the start.
"""

from __future__ import annotations

import logging

import pytest

from opportunities.models import FieldDefinition, SyncObjectRun, SyncState
from opportunities.sync.objects import SYNCED_OBJECTS
from tests.integration.sync.checks import assert_database_equals_org, ok_cycle

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

QUERY_TIMEOUT = "Your query request was running for too long."


def _loaded_completely(cycle) -> None:
    """Every object finished its first load in this cycle, with no error, its watermark at the
    window's end."""
    assert cycle.error_message == ""
    for run in SyncObjectRun.objects.filter(cycle=cycle, window_end__isnull=False):
        assert run.error_message == "", (run.sobject, run.error_message)
        state = SyncState.objects.get(sobject=run.sobject)
        assert state.initial_load_completed_at is not None, run.sobject
        assert state.watermark == run.window_end, run.sobject
    assert SyncState.objects.filter(sobject__in=SYNCED_OBJECTS, failure_count=0).count() == len(
        SYNCED_OBJECTS
    )


def test_a_first_load_on_bulk_sends_jobs_without_order_by(org, synced_settings, caplog):
    """The emulator refuses a Bulk job with ORDER BY: the load must go through Bulk, not fall back."""
    synced_settings.SALESFORCE_BULK_THRESHOLD = 100
    org.generate(opportunities=300, people=250, seed=9)
    with caplog.at_level(logging.WARNING, logger="opportunities.sync.engine"):
        cycle = ok_cycle()
    assert not [r.getMessage() for r in caplog.records if "Bulk API refused" in r.getMessage()]
    states = org.stats()["bulk_job_states"]
    # Contact, Opportunity and OpportunityContactRole are above the threshold; every job completed.
    assert set(states) == {"JobComplete"} and states["JobComplete"] >= 3, states
    _loaded_completely(cycle)
    assert_database_equals_org(org)


def _spread_org(org) -> None:
    """People on opportunities whose changes lie days apart: a window that spans them times out on
    Bulk, and its halves do not."""
    org.generate(opportunities=40, people=40, seed=21)
    [account] = org.create("Account", {"Name": "Older Co"})
    for days in (9, 4):
        contacts = org.create(
            "Contact",
            *[{"LastName": f"Older {days}-{n}", "AccountId": account} for n in range(25)],
            backdate_seconds=days * 86400,
        )
        deals = org.create(
            "Opportunity",
            *[
                {
                    "Name": f"Older {days}-{n}",
                    "StageName": "Prospecting",
                    "CloseDate": "2031-01-01",
                    "Amount": n,
                }
                for n in range(25)
            ],
            backdate_seconds=days * 86400,
        )
        org.create(
            "OpportunityContactRole",
            *[
                {"OpportunityId": deal, "ContactId": contact, "Role": "Decision Maker"}
                for deal, contact in zip(deals, contacts, strict=True)
            ],
            backdate_seconds=days * 86400,
        )


def test_a_bulk_query_timeout_splits_the_window_and_the_load_completes(org, synced_settings):
    synced_settings.SALESFORCE_BULK_THRESHOLD = 20
    _spread_org(org)
    # Bulk jobs over more than a day time out; the REST query of the same window still answers,
    # so only the Bulk path meets the timeout.
    org.faults(bulk_query_timeout_days=1)
    cycle = ok_cycle()
    states = org.stats()["bulk_job_states"]
    assert states.get("Failed", 0) >= 3, states  # each large object's whole window timed out
    assert states.get("JobComplete", 0) >= 3, states  # and its narrower halves went through Bulk
    _loaded_completely(cycle)
    assert_database_equals_org(org)


def test_a_query_timeout_of_the_rest_fallback_splits_the_window(org, synced_settings):
    synced_settings.SALESFORCE_BULK_THRESHOLD = 20
    _spread_org(org)
    # The first Bulk job (Contact's) is refused, so REST pages the window instead; that query
    # times out once. Neither may fail the object: the window is read in halves.
    org.faults(
        error={
            "status": 400,
            "error_code": "LIMIT_EXCEEDED",
            "message": "Max bulk v2 query jobs (10000) per 24 hrs has been reached (10021).",
            "times": 1,
            "path_contains": "/jobs/query",
        }
    )
    org.faults(
        error={
            "status": 400,
            "error_code": "QUERY_TIMEOUT",
            "message": QUERY_TIMEOUT,
            "times": 1,
            "path_contains": "/queryAll",
        }
    )
    cycle = ok_cycle()
    _loaded_completely(cycle)
    assert org.stats()["bulk_job_states"].get("JobComplete", 0) >= 3
    assert_database_equals_org(org)


def test_a_query_timeout_after_describing_again_splits_the_window(org, synced_settings):
    """The other way into a window's query: INVALID_FIELD (a field hidden between describes), a
    describe, and the query again, which times out. That window is split too."""
    # Two cycles within one second read a window of about the lookback alone (60 s), and the split
    # stops below a minute: a wider lookback keeps the window splittable whatever the timing.
    synced_settings.SALESFORCE_LOOKBACK_SECONDS = 600
    org.create("Opportunity", {"Name": "Hide", "StageName": "Prospecting", "CloseDate": "2031-01-01"})
    ok_cycle()
    org.hide_field("Opportunity", "Description")
    org.create("Opportunity", {"Name": "After", "StageName": "Prospecting", "CloseDate": "2031-01-01"})
    org.faults(
        error={
            "status": 400,
            "error_code": "QUERY_TIMEOUT",
            "message": QUERY_TIMEOUT,
            "times": 1,
            "path_contains": "/queryAll",  # the query after describing (the composite's are apart)
        }
    )
    cycle = ok_cycle()
    assert cycle.error_message == ""
    assert not FieldDefinition.objects.get(sobject="Opportunity", api_name="Description").is_active
    assert_database_equals_org(org)
