"""New fields in the next cycle (issue P15 point 4, salesforce-api.md §5.2): every cycle's
Composite request describes the four objects with If-Modified-Since, an unchanged object answers
304 inside the one call, a change is applied (and back-filled) at once; the operator's command
describes unconditionally."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db.models import Max
from rest_framework.test import APIClient

from opportunities.models import FieldDefinition, Opportunity, SyncState
from tests.integration.sync.checks import assert_database_equals_org, ok_cycle
from tests.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Far longer than any test: no describe is unconditional because its interval came round.
A_DAY = 86400


def describes_stored() -> dict[str, dt.datetime]:
    """By object, when a describe was last stored: every describe answered in full marks its
    definitions seen (this host's clock, so two of them never share a time)."""
    rows = FieldDefinition.objects.values("sobject").annotate(seen=Max("last_seen_at"))
    return {row["sobject"]: row["seen"] for row in rows}


def idle_cycle_answered_304(org) -> bool:
    """One idle cycle: it costs the Composite request alone, and says whether every object's
    describe in it answered 304. Right after a metadata change, the If-Modified-Since margin
    makes a few cycles describe in full."""
    before_times, before_calls = describes_stored(), org.api_calls()
    cycle = ok_cycle()
    assert cycle.api_calls == 1 and org.api_calls() - before_calls == 1
    return describes_stored() == before_times


def opportunity_constraints(viewer) -> set[str]:
    client = APIClient()
    client.force_authenticate(viewer)
    catalog = {entry["filter"]: entry for entry in client.get("/api/v1/filters/").json()}
    return {c["field"] for c in catalog["has_opportunity"]["constraints"]}


def test_a_field_added_in_salesforce_is_a_filter_after_one_cycle(org, synced_settings, viewer):
    synced_settings.SALESFORCE_DESCRIBE_INTERVAL = A_DAY
    [deal] = org.create(
        "Opportunity", {"Name": "Tiered", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    ok_cycle()
    assert "Tier__c" not in opportunity_constraints(viewer)
    org.add_field("Opportunity", "Tier__c", "picklist", values=["Gold", "Silver"])
    org.set_values_silently("Opportunity", "Tier__c", {deal: "Gold"})  # no SystemModstamp change
    cycle = ok_cycle()
    assert "Tier__c" in opportunity_constraints(viewer)
    assert Opportunity.objects.get(sf_id=deal).custom_fields["Tier__c"] == "Gold"  # back-filled
    assert cycle.api_calls == 2  # the Composite request and the back-fill's query
    assert_database_equals_org(org)


def test_a_field_hidden_in_salesforce_is_deactivated_after_one_cycle(org, synced_settings):
    synced_settings.SALESFORCE_DESCRIBE_INTERVAL = A_DAY
    org.create("Contact", {"LastName": "Hidden", "Title": "CTO"})
    ok_cycle()
    org.hide_field("Contact", "Title")
    ok_cycle()  # the describe in the Composite answers 200 without Title; the query still asks for it
    assert not FieldDefinition.objects.get(sobject="Contact", api_name="Title").is_active
    assert_database_equals_org(org)


def test_an_idle_cycles_describes_answer_304_and_cost_no_extra_call(org, synced_settings):
    synced_settings.SALESFORCE_DESCRIBE_INTERVAL = A_DAY
    org.generate(opportunities=5, people=5, seed=4)
    ok_cycle()
    wait_until(
        lambda: idle_cycle_answered_304(org), timeout=60, what="an idle cycle whose describes answer 304"
    )
    assert idle_cycle_answered_304(org)  # and the next one too: nothing changed


def test_the_operator_command_always_describes(org, synced_settings):
    """The org says nothing changed, yet OppSync's definitions differ (here one made inactive by
    hand): an ordinary cycle keeps them (304), the operator's command describes in full."""
    synced_settings.SALESFORCE_DESCRIBE_INTERVAL = A_DAY
    org.create("Contact", {"LastName": "Operator", "Title": "CFO"})
    ok_cycle()
    wait_until(
        lambda: idle_cycle_answered_304(org), timeout=60, what="an idle cycle whose describes answer 304"
    )
    title = FieldDefinition.objects.filter(sobject="Contact", api_name="Title")
    title.update(is_active=False)
    assert idle_cycle_answered_304(org) and not title.get().is_active
    call_command("salesforce_sync", "--no-progress")
    assert title.get().is_active
    assert_database_equals_org(org)


def test_the_describe_interval_still_bounds_an_unconditional_describe(org, synced_settings):
    """SALESFORCE_DESCRIBE_INTERVAL is the backstop for a metadata change an org's
    If-Modified-Since would not show: once it has passed, the describe carries no date."""
    synced_settings.SALESFORCE_DESCRIBE_INTERVAL = A_DAY
    org.create("Contact", {"LastName": "Interval"})
    ok_cycle()
    wait_until(
        lambda: idle_cycle_answered_304(org), timeout=60, what="an idle cycle whose describes answer 304"
    )
    synced_settings.SALESFORCE_DESCRIBE_INTERVAL = 0
    assert not idle_cycle_answered_304(org)  # every describe answered in full, still one call


def test_a_host_clock_ahead_of_the_orgs_misses_no_new_field(org, synced_settings, viewer):
    """If-Modified-Since is compared with the org's metadata times: it is taken from the org's
    clock (the Date header), never from this host's, which runs ten minutes ahead here."""
    synced_settings.SALESFORCE_DESCRIBE_INTERVAL = A_DAY
    org.faults(clock_offset_seconds=-600)
    org.create("Opportunity", {"Name": "Skewed", "StageName": "Prospecting", "CloseDate": "2031-01-01"})
    ok_cycle()
    stored = SyncState.objects.get(sobject="Opportunity").last_describe_at
    assert stored is not None and stored < dt.datetime.now(dt.UTC) - dt.timedelta(minutes=9)
    org.add_field("Opportunity", "Skew__c", "string")
    ok_cycle()
    assert "Skew__c" in opportunity_constraints(viewer)
