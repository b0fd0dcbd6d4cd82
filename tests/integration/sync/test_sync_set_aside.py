"""Issue P11: one bad record never stops the sync. A record that cannot be stored is set aside
with its reason, shown on the status page, retried by id until it applies; every other record and
object keeps flowing, and the window's watermark still advances."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys

import pytest
from django.core.management import call_command

from opportunities.management.commands import salesforce_sync
from opportunities.models import (
    Activity,
    ActivityType,
    ContactRole,
    Opportunity,
    SetAsideRecord,
    SyncObjectRun,
    SyncState,
)
from opportunities.sync.objects import SPECS
from people.models import Person
from tests.integration.sync.checks import activity_keys, assert_database_equals_org, ok_cycle
from tests.integration.sync.conftest import salesforce_environment
from tests.processes import REPO, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TOO_BIG = 1e21  # Salesforce stores it; OppSync's amount column holds 18 digits before the point


def _deal(name: str, amount: float = 1000) -> dict:
    return {"Name": name, "StageName": "Prospecting", "CloseDate": "2031-01-01", "Amount": amount}


def _stored(sobject: str) -> set[str]:
    return SPECS[sobject].local_ids()[1]


def _assert_no_activity_twice() -> None:
    keys = activity_keys()
    assert len(keys) == len(set(keys)), "an activity was recorded twice"


def test_one_opportunity_that_cannot_be_stored_is_set_aside_shown_and_applies_once_fixed(
    org, synced_settings, admin_client
):
    """Acceptance: one Opportunity of a page cannot be stored (its amount does not fit). Every
    other record of that page and every later change arrive; the status page and the API name the
    record and the reason; fixed in the org (without a SystemModstamp change, so only the retry by
    id can see it), it applies by itself and its row goes."""
    synced_settings.SALESFORCE_SET_ASIDE_RETRY_SECONDS = 0  # due at the next cycle
    [ann] = org.create("Contact", {"LastName": "Ann"})
    good, bad, other = org.create("Opportunity", _deal("Good"), _deal("Bad", TOO_BIG), _deal("Other"))
    org.create(
        "OpportunityContactRole", *({"OpportunityId": d, "ContactId": ann} for d in (good, bad, other))
    )

    ok_cycle()
    assert _stored("Opportunity") == {good, other}
    assert ContactRole.objects.count() == 3  # the bad deal's role waits for its opportunity
    row = SetAsideRecord.objects.get()
    assert (row.sobject, row.sf_id, row.attempts) == ("Opportunity", bad, 1)
    assert "does not fit Opportunity.amount" in row.reason
    watermark = SyncState.objects.get(sobject="Opportunity").watermark
    assert watermark is not None  # the window committed, the bad record with it (by id)
    page = admin_client.get("/admin/sync-status/panel/").content.decode()
    assert "Records set aside" in page and f'data-set-aside="Opportunity:{bad}"' in page
    assert "does not fit Opportunity.amount" in page
    status = admin_client.get("/api/v1/sync/status/").json()
    assert status["set_aside_count"] == 1
    assert [(r["sobject"], r["sf_id"], r["attempts"]) for r in status["set_aside"]] == [
        ("Opportunity", bad, 1)
    ]

    # Later changes keep arriving; the bad record, still bad, is tried again (one more attempt).
    org.update("Opportunity", {"Id": good, "StageName": "Negotiation"})
    [late] = org.create("Opportunity", _deal("Late"))
    ok_cycle()
    assert Opportunity.objects.get(sf_id=good).stage_name == "Negotiation"
    assert _stored("Opportunity") == {good, other, late}
    assert SetAsideRecord.objects.get().attempts == 2
    assert SyncState.objects.get(sobject="Opportunity").watermark > watermark

    # No lookback from here: no window re-reads the bad record, only its retry by id can.
    synced_settings.SALESFORCE_LOOKBACK_SECONDS = 0
    org.set_values_silently("Opportunity", "Amount", {bad: 2500})
    org.set_values_silently("Opportunity", "ExpectedRevenue", {bad: 250})
    ok_cycle()
    assert not SetAsideRecord.objects.exists()
    assert Opportunity.objects.get(sf_id=bad).amount == 2500
    added = Activity.objects.filter(activity_type=ActivityType.ADDED_TO_OPPORTUNITY, opportunity__sf_id=bad)
    assert list(added.values_list("person__sf_contact_id", flat=True)) == [ann]
    page = admin_client.get("/admin/sync-status/panel/").content.decode()
    assert 'id="set-aside-none"' in page
    _assert_no_activity_twice()
    assert_database_equals_org(org)


@pytest.mark.parametrize("sobject", list(SPECS))
def test_a_database_error_in_each_applier_sets_one_record_aside_and_the_rest_flows(
    org, synced_settings, monkeypatch, sobject
):
    """The applier of `sobject` hits a real constraint violation (after its own writes, so the
    page's transaction is aborted on PostgreSQL) whenever one record is in its page. The page is
    rolled back and applied record by record: the others commit, that one is set aside with the
    error's type and message, the other objects sync on, and once the fault is gone the record
    applies with nothing recorded twice."""
    synced_settings.SALESFORCE_SET_ASIDE_RETRY_SECONDS = 0
    contacts = org.create("Contact", {"LastName": "Ann"}, {"LastName": "Bob"}, {"LastName": "Cy"})
    leads = org.create(
        "Lead",
        {"LastName": "Lee", "Company": "L1"},
        {"LastName": "Lou", "Company": "L2"},
        {"LastName": "Liv", "Company": "L3"},
    )
    deals = org.create("Opportunity", _deal("One"), _deal("Two"), _deal("Three"))
    roles = org.create(
        "OpportunityContactRole",
        *(
            {"OpportunityId": d, "ContactId": c, "Role": "Buyer"}
            for d, c in zip(deals, contacts, strict=True)
        ),
    )
    ids = {"Contact": contacts, "Lead": leads, "Opportunity": deals, "OpportunityContactRole": roles}
    poisoned = ids[sobject][1]
    spec = SPECS[sobject]

    def failing_applier(records, fields, ctx):
        spec.applier(records, fields, ctx)
        if any(r.get("Id") == poisoned for r in records):
            SyncState.objects.create(sobject=sobject)  # a duplicate: IntegrityError

    monkeypatch.setitem(SPECS, sobject, dataclasses.replace(spec, applier=failing_applier))
    first = ok_cycle()
    for name, expected in ids.items():
        assert _stored(name) == set(expected) - ({poisoned} if name == sobject else set()), name
    row = SetAsideRecord.objects.get()
    assert (row.sobject, row.sf_id) == (sobject, poisoned)
    assert row.reason.startswith("IntegrityError: ")
    run = SyncObjectRun.objects.get(cycle=first, sobject=sobject)
    assert run.failed_count == 1 and run.created_count == 2
    assert all(s.watermark is not None for s in SyncState.objects.all())

    # The fault stays: later changes of the same object and of the others still arrive.
    changed = ids[sobject][0]
    org.update(
        sobject,
        {
            "Id": changed,
            **(
                {"Role": "Champion"}
                if sobject == "OpportunityContactRole"
                else {"Title": "CFO"}
                if sobject in ("Contact", "Lead")
                else {"StageName": "Negotiation"}
            ),
        },
    )
    org.update("Opportunity", {"Id": deals[2], "Amount": 4321})
    ok_cycle()
    assert Opportunity.objects.get(sf_id=deals[2]).amount == 4321
    assert SetAsideRecord.objects.get().attempts == 2

    monkeypatch.undo()
    ok_cycle()
    assert not SetAsideRecord.objects.exists()
    for name, expected in ids.items():
        assert _stored(name) == set(expected), name
    linked = ContactRole.objects.filter(person__isnull=False, opportunity__isnull=False)
    assert linked.count() == 3
    added = Activity.objects.filter(activity_type=ActivityType.ADDED_TO_OPPORTUNITY)
    assert added.count() == 3  # each role's link recorded once, the retried one's too
    _assert_no_activity_twice()
    assert_database_equals_org(org)


def test_salesforce_sync_exits_0_with_records_set_aside_and_prints_each(org, synced_settings, tmp_path):
    """The command's cycle completed with a record set aside: exit 0, the record printed with its
    object, id and reason. A cycle that cannot run at all (refused credentials): non-zero."""
    [bad] = org.create("Opportunity", _deal("Bad", TOO_BIG))
    org.create("Opportunity", _deal("Good"))
    env = process_env(OPPSYNC_VAR_DIR=str(tmp_path / "var"), REDIS_URL="", **salesforce_environment(org))
    command = [sys.executable, "manage.py", "salesforce_sync", "--no-progress"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 record(s) set aside" in done.stdout
    [line] = [line for line in done.stdout.splitlines() if bad in line]
    assert line.strip().startswith(f"Opportunity {bad}: ") and "does not fit Opportunity.amount" in line
    assert Opportunity.objects.count() == 1

    refused = subprocess.run(
        command,
        cwd=REPO,
        env={**env, "SALESFORCE_CLIENT_SECRET": "not-the-secret"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode != 0
    assert "set aside" not in refused.stdout


def test_salesforce_sync_prints_the_first_records_set_aside_and_counts_the_rest(
    org, synced_settings, monkeypatch
):
    """After a mass failure the terminal gets the first rows and a count, not every record."""
    monkeypatch.setattr(salesforce_sync, "PRINTED_SET_ASIDE", 2)
    org.create("Opportunity", *[_deal(f"Bad {n}", TOO_BIG) for n in range(3)])
    out = io.StringIO()
    call_command("salesforce_sync", "--no-progress", stdout=out)
    lines = out.getvalue().splitlines()
    assert "3 record(s) set aside" in out.getvalue()
    assert len([line for line in lines if line.startswith("  Opportunity ")]) == 2
    assert lines[-1] == "  … and 1 more on the Sync status page"


def test_a_set_aside_record_salesforce_no_longer_returns_is_forgotten_with_a_log_line(
    org, synced_settings, caplog
):
    synced_settings.SALESFORCE_SET_ASIDE_RETRY_SECONDS = 0
    [bad] = org.create("Opportunity", _deal("Bad", TOO_BIG))
    ok_cycle()
    assert SetAsideRecord.objects.filter(sf_id=bad).exists()
    org.set_visible("Opportunity", [bad], False)  # gone for the integration user
    with caplog.at_level("WARNING", logger="opportunities.sync.set_aside"):
        ok_cycle()
    assert not SetAsideRecord.objects.exists()
    assert any(bad in message and "no longer returns it" in message for message in caplog.messages)


def test_the_retry_of_a_record_set_aside_in_a_first_load_records_first_load_activities(org, synced_settings):
    """A record set aside during its object's first load applies later as part of that load: the
    activities it brings are the first load's, so no trigger fires for old news."""
    synced_settings.SALESFORCE_SET_ASIDE_RETRY_SECONDS = 0
    [ann] = org.create("Contact", {"LastName": "Ann"})
    [bad] = org.create("Opportunity", _deal("Bad", TOO_BIG))
    org.create("OpportunityContactRole", {"OpportunityId": bad, "ContactId": ann})
    ok_cycle()
    synced_settings.SALESFORCE_LOOKBACK_SECONDS = 0  # only the retry by id reads it again
    org.set_values_silently("Opportunity", "Amount", {bad: 10})
    org.set_values_silently("Opportunity", "ExpectedRevenue", {bad: 1})
    ok_cycle()
    assert not SetAsideRecord.objects.exists()
    added = Activity.objects.get(activity_type=ActivityType.ADDED_TO_OPPORTUNITY)
    assert added.is_initial_load
    assert Person.objects.get(sf_contact_id=ann).activities.count() == 1


def test_a_second_lead_converted_later_into_the_same_contact_is_merged_not_swapped(org, synced_settings):
    """Case 2 across cycles: the first lead's person holds the (invisible) contact; a second lead
    converted into it later is merged into that person instead of taking its lead id (which left
    the first lead without a person, and swapped back at its next re-read)."""
    first, second = org.create(
        "Lead", {"LastName": "Lee", "Company": "A"}, {"LastName": "Lee", "Company": "B"}
    )
    [contact] = org.create("Contact", {"LastName": "Lee"})
    org.set_visible("Contact", [contact], False)
    org.convert_lead(first, contact_id=contact, create_opportunity=False)
    ok_cycle()
    holder = Person.objects.get(sf_contact_id=contact)
    assert holder.sf_lead_id == first
    org.convert_lead(second, contact_id=contact, create_opportunity=False)
    ok_cycle()
    ok_cycle(reconcile=True)
    holder.refresh_from_db()
    assert holder.sf_lead_id == first and holder.merged_into is None
    assert Person.objects.get(sf_lead_id=second).merged_into == holder
    assert not SetAsideRecord.objects.exists()
    assert_database_equals_org(org)
