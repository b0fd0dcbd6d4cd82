"""Issue P11 review: what is no record's fault never sets records aside. The soft time limit ends
the cycle; a schema the code does not match, or an applier bug every record trips, fails the object
with its watermark held; a back-fill sets aside only the record that cannot take its values; the
retry of set-aside records survives Salesforce refusing it; the reconcile leaves set-aside records
to their retry."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import ProgrammingError
from django.utils import timezone

from opportunities.models import (
    Activity,
    ActivityType,
    Opportunity,
    SetAsideRecord,
    SyncCycle,
    SyncLease,
    SyncObjectRun,
    SyncState,
    SyncStatus,
)
from opportunities.sync.engine import ALL_ALIKE_MINIMUM
from opportunities.sync.objects import SPECS
from tests.integration.sync.checks import ok_cycle, run_cycle

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TOO_BIG = 1e21  # Salesforce stores it; OppSync's amount column holds 18 digits before the point


def _deal(name: str, amount: float = 1000) -> dict:
    return {"Name": name, "StageName": "Prospecting", "CloseDate": "2031-01-01", "Amount": amount}


def _failing(monkeypatch, sobject: str, error: Exception, *, only: str | None = None) -> None:
    """The applier of `sobject` raises `error` (for pages holding `only`, or for every page)."""
    spec = SPECS[sobject]

    def applier(records, fields, ctx):
        if only is None or any(r.get("Id") == only for r in records):
            raise error
        spec.applier(records, fields, ctx)

    monkeypatch.setitem(SPECS, sobject, dataclasses.replace(spec, applier=applier))


def test_the_soft_time_limit_ends_the_cycle_failed_with_the_lease_released(org, synced_settings, monkeypatch):
    """Before: SoftTimeLimitExceeded (an Exception) sent the page down the one-by-one path, each
    record set aside with reason "SoftTimeLimitExceeded", and the cycle carried on."""
    org.create("Opportunity", _deal("One"), _deal("Two"))
    _failing(monkeypatch, "Opportunity", SoftTimeLimitExceeded())
    cycle = run_cycle()
    assert cycle.status == SyncStatus.FAILED
    assert "soft time limit" in cycle.error_message
    assert not SetAsideRecord.objects.exists()
    assert not SyncObjectRun.objects.filter(status=SyncStatus.RUNNING).exists()
    assert not SyncCycle.objects.filter(status=SyncStatus.RUNNING).exists()
    assert SyncLease.objects.get().owner == ""  # released: the next cycle can run at once
    assert SyncState.objects.get(sobject="Opportunity").watermark is None
    monkeypatch.undo()
    ok_cycle()
    assert Opportunity.objects.count() == 2


def test_the_soft_time_limit_outside_a_page_ends_the_cycle_too(org, synced_settings, monkeypatch):
    """Outside any page (here the reconcile), `_isolated` used to record it as the
    object's internal error and go on with the next object."""
    from opportunities.sync.engine import deletes

    org.create("Opportunity", _deal("One"))
    ok_cycle()

    def stop(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(deletes, "reconcile", stop)
    cycle = run_cycle(reconcile=True)
    assert cycle.status == SyncStatus.FAILED and "soft time limit" in cycle.error_message
    assert not SyncObjectRun.objects.filter(status=SyncStatus.RUNNING).exists()
    assert SyncLease.objects.get().owner == ""


def test_a_schema_error_fails_the_object_and_sets_nothing_aside(org, synced_settings, monkeypatch):
    """A missing column (migrate not run) is no record's fault: before, every record of every
    page was set aside and the watermark moved past them all."""
    org.create("Opportunity", _deal("One"), _deal("Two"), _deal("Three"))
    _failing(monkeypatch, "Opportunity", ProgrammingError('column "region" does not exist'))
    cycle = run_cycle()
    assert not SetAsideRecord.objects.exists()
    state = SyncState.objects.get(sobject="Opportunity")
    assert state.watermark is None and state.retry_after is not None
    assert "ProgrammingError" in state.last_error and "region" in state.last_error
    assert "Opportunity: " in cycle.error_message
    assert SyncObjectRun.objects.get(cycle=cycle, sobject="Opportunity").status == SyncStatus.FAILED
    assert SyncState.objects.get(sobject="Contact").watermark is not None  # the others synced


def test_an_applier_bug_every_record_trips_fails_the_object_instead_of_setting_all_aside(
    org, synced_settings, monkeypatch
):
    """Every record of the page fails alone with the same error: the page rolls back and the
    object fails (watermark held, backing off, named on the status page), nothing set aside."""
    org.create("Opportunity", *[_deal(f"Deal {n}") for n in range(ALL_ALIKE_MINIMUM)])
    _failing(monkeypatch, "Opportunity", KeyError("StageName"))
    cycle = run_cycle()
    assert not SetAsideRecord.objects.exists()
    assert not Opportunity.objects.exists()
    state = SyncState.objects.get(sobject="Opportunity")
    assert state.watermark is None and state.failure_count == 1
    assert "KeyError" in state.last_error
    run = SyncObjectRun.objects.get(cycle=cycle, sobject="Opportunity")
    assert run.status == SyncStatus.FAILED and run.failed_count == 0
    monkeypatch.undo()
    SyncState.objects.update(retry_after=None)
    ok_cycle()
    assert Opportunity.objects.count() == ALL_ALIKE_MINIMUM


def test_a_few_records_that_fail_alike_are_set_aside_and_their_retry_never_fails_the_object(
    org, synced_settings, monkeypatch
):
    """Two bad records of a window are two bad records: set aside, and their retry by id (which
    holds only records known to fail) leaves the object succeeding."""
    synced_settings.SALESFORCE_SET_ASIDE_RETRY_SECONDS = 0
    org.create("Opportunity", _deal("One"), _deal("Two"))
    _failing(monkeypatch, "Opportunity", KeyError("StageName"))
    ok_cycle()
    assert SetAsideRecord.objects.count() == 2
    for _ in range(2):  # retried by id, failing alike again
        cycle = ok_cycle()
        assert SyncObjectRun.objects.get(cycle=cycle, sobject="Opportunity").status == SyncStatus.SUCCEEDED
    assert SetAsideRecord.objects.filter(attempts__gte=2).count() == 2


def test_a_backfill_value_that_does_not_fit_sets_that_record_aside_and_fills_the_others(org, synced_settings):
    """Amount becomes readable with one value too big for its column. Before, the ValueError
    stopped the back-fill (it runs once), so no row got its amount."""
    deals = org.create("Opportunity", _deal("One", 0), _deal("Two", 0), _deal("Three", 0))
    org.hide_field("Opportunity", "Amount")
    ok_cycle()
    assert Opportunity.objects.count() == 3
    org.set_values_silently("Opportunity", "Amount", {deals[0]: 10, deals[1]: TOO_BIG, deals[2]: 30})
    org.hide_field("Opportunity", "Amount", hidden=False)
    SyncState.objects.update(last_describe_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    cycle = ok_cycle()
    amounts = dict(Opportunity.objects.values_list("sf_id", "amount"))
    assert (amounts[deals[0]], amounts[deals[2]]) == (10, 30)
    assert amounts[deals[1]] is None
    row = SetAsideRecord.objects.get()
    assert (row.sobject, row.sf_id) == ("Opportunity", deals[1])
    assert "does not fit Opportunity.amount" in row.reason
    assert SyncObjectRun.objects.get(cycle=cycle, sobject="Opportunity").status == SyncStatus.SUCCEEDED


def test_a_salesforce_error_on_the_retry_by_id_leaves_the_object_succeeding(org, synced_settings):
    """The retry's query times out: before, the whole object failed after its window committed
    (skipping back-fill and deletes). Now the record stays set aside, its retry postponed, with no
    attempt counted."""
    synced_settings.SALESFORCE_SET_ASIDE_RETRY_SECONDS = 0
    [bad] = org.create("Opportunity", _deal("Bad", TOO_BIG))
    ok_cycle()
    assert SetAsideRecord.objects.get().sf_id == bad
    synced_settings.SALESFORCE_LOOKBACK_SECONDS = 0  # no window re-reads it: only its retry
    # Only the retry is a standalone query (the window rides in the cycle's Composite request).
    org.faults(
        error={
            "status": 400,
            "error_code": "QUERY_TIMEOUT",
            "message": "timed out",
            "path_contains": "/query",
        }
    )
    before = timezone.now()
    cycle = ok_cycle()
    run = SyncObjectRun.objects.get(cycle=cycle, sobject="Opportunity")
    assert run.status == SyncStatus.SUCCEEDED, run.error_message
    state = SyncState.objects.get(sobject="Opportunity")
    assert state.failure_count == 0 and state.last_error == ""
    row = SetAsideRecord.objects.get()
    assert row.sf_id == bad and row.attempts == 1 and row.retry_after >= before


def test_the_reconcile_leaves_a_record_set_aside_in_a_first_load_to_its_retry(
    org, synced_settings, monkeypatch
):
    """A role set aside during the first load is not fetched by the reconcile (with the cycle's
    live flag it recorded a live Added: triggers fired for old news); its retry applies it as
    the first load's."""
    synced_settings.SALESFORCE_SET_ASIDE_RETRY_SECONDS = 3600  # the retry waits
    ann, bob = org.create("Contact", {"LastName": "Ann"}, {"LastName": "Bob"})
    [deal] = org.create("Opportunity", _deal("Deal"))
    _, poisoned = org.create(
        "OpportunityContactRole",
        {"OpportunityId": deal, "ContactId": ann},
        {"OpportunityId": deal, "ContactId": bob},
    )
    _failing(monkeypatch, "OpportunityContactRole", ValueError("poisoned"), only=poisoned)
    ok_cycle()
    assert SetAsideRecord.objects.get().sf_id == poisoned
    monkeypatch.undo()
    synced_settings.SALESFORCE_LOOKBACK_SECONDS = 0  # no window re-reads it
    ok_cycle(reconcile=True)
    assert not Activity.objects.filter(sf_contact_role_id=poisoned).exists()
    assert SetAsideRecord.objects.filter(sf_id=poisoned).exists()
    SetAsideRecord.objects.update(retry_after=timezone.now() - dt.timedelta(seconds=1))
    ok_cycle()
    assert not SetAsideRecord.objects.exists()
    added = Activity.objects.get(sf_contact_role_id=poisoned, activity_type=ActivityType.ADDED_TO_OPPORTUNITY)
    assert added.is_initial_load
    assert not Activity.objects.filter(is_initial_load=False).exists()
