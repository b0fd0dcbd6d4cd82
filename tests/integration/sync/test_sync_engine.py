"""The sync engine in the test process against an emulated org over HTTPS."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from opportunities.models import (
    Activity,
    ActivityType,
    ContactRole,
    FieldDefinition,
    Opportunity,
    SyncState,
    SyncStatus,
)
from people.models import Person
from tests.integration.sync.checks import (
    activity_keys,
    assert_database_equals_org,
    assert_totals_current,
    ok_cycle,
    run_cycle,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_initial_sync_copies_the_org_exactly(org, synced_settings):
    org.generate(opportunities=250, people=200, seed=3)
    cycle = ok_cycle()
    assert cycle.is_initial_load
    assert_database_equals_org(org)
    assert Opportunity.objects.count() == 250
    linked = ContactRole.objects.filter(
        is_deleted=False, person__isnull=False, opportunity__isnull=False
    ).count()
    added = Activity.objects.filter(activity_type=ActivityType.ADDED_TO_OPPORTUNITY)
    assert added.count() == linked
    assert not added.filter(is_initial_load=False).exists()  # the first load fires no trigger
    assert ContactRole.objects.filter(
        person__isnull=True
    ).exists()  # roles of contacts it cannot see are kept
    assert FieldDefinition.objects.filter(
        sobject="Opportunity", api_name="StageName", field_type="picklist"
    ).exists()
    # What the status page shows of a first load: each object's run knows how many records
    # Salesforce reported and applied all of them (no backlog left).
    assert cycle.object_runs.count() == 4
    for run in cycle.object_runs.all():
        assert run.expected_count and run.expected_count == run.processed_count, run.sobject
        assert run.backlog == 0
    contacts = cycle.object_runs.get(sobject="Contact")
    assert contacts.created_count == Person.objects.exclude(sf_contact_id=None).count()


def test_a_large_first_load_goes_through_bulk_api(org, synced_settings):
    synced_settings.SALESFORCE_BULK_THRESHOLD = 100
    org.generate(opportunities=300, people=250, seed=9)
    org.faults(page_size=200)
    ok_cycle()
    assert org.stats()["bulk_jobs"] >= 3  # Contact, Opportunity, OpportunityContactRole
    assert_database_equals_org(org)
    assert (
        Activity.objects.filter(is_initial_load=True).count()
        == ContactRole.objects.filter(
            is_deleted=False, person__isnull=False, opportunity__isnull=False
        ).count()
    )


def test_running_the_same_cycle_twice_adds_nothing(org, synced_settings):
    org.generate(opportunities=60, people=50, seed=4)
    ok_cycle()
    before = activity_keys()
    second = ok_cycle()
    assert activity_keys() == before
    assert sum(r.created_count + r.updated_count for r in second.object_runs.all()) == 0
    assert_database_equals_org(org)


def test_an_idle_cycle_costs_one_api_call(org, synced_settings):
    org.generate(opportunities=20, people=20, seed=5)
    ok_cycle()
    calls = org.api_calls()
    cycle = ok_cycle()
    assert org.api_calls() - calls == 1
    assert cycle.api_calls == 1
    assert not cycle.is_initial_load


def _expected_update_activities(before, after, linked_people):
    tracked_out = {
        "SystemModstamp",
        "LastModifiedDate",
        "LastModifiedById",
        "CreatedDate",
        "CreatedById",
        "IsDeleted",
    }
    expected = []
    for field, new in after.items():
        if field in tracked_out or field.startswith("_") or before.get(field) == new:
            continue
        for person in linked_people:
            expected.append((person, field))
    return sorted(expected)


def test_changes_record_exactly_the_expected_activities(org, synced_settings):
    [account] = org.create("Account", {"Name": "Acme"})
    [ann, bob, cid] = org.create(
        "Contact", *[{"LastName": n, "AccountId": account} for n in ("Ann", "Bob", "Cid")]
    )
    [deal, other] = org.create(
        "Opportunity",
        {
            "Name": "Deal",
            "StageName": "Prospecting",
            "CloseDate": "2031-01-01",
            "Amount": 1000.0,
            "AccountId": account,
        },
        {"Name": "Other", "StageName": "Prospecting", "CloseDate": "2031-01-01", "Amount": 10.0},
    )
    [ann_role, bob_role] = org.create(
        "OpportunityContactRole",
        {"OpportunityId": deal, "ContactId": ann, "Role": "Decision Maker", "IsPrimary": True},
        {"OpportunityId": deal, "ContactId": bob, "Role": "Evaluator"},
    )
    ok_cycle()
    Activity.objects.all().delete()
    before = {r["Id"]: r for r in org.records("Opportunity")}[deal]

    org.update("Opportunity", {"Id": deal, "StageName": "Closed Won"})
    org.create("OpportunityContactRole", {"OpportunityId": other, "ContactId": cid, "Role": "Influencer"})
    org.delete("OpportunityContactRole", bob_role)  # a hard delete; getDeleted finds it below
    org.update("Contact", {"Id": ann, "Title": "CEO"})
    ok_cycle()

    after = {r["Id"]: r for r in org.records("Opportunity")}[deal]
    updates = sorted(
        (a.person.sf_contact_id, a.field)
        for a in Activity.objects.filter(activity_type=ActivityType.OPPORTUNITY_UPDATED).select_related(
            "person"
        )
    )
    # Bob's role was deleted after the update, but getDeleted has not run yet in this cycle's
    # window order, so both people attached at the time of the update see it.
    assert updates == _expected_update_activities(
        before, after, [ann, bob]
    ) or updates == _expected_update_activities(before, after, [ann])
    stage = Activity.objects.get(
        activity_type=ActivityType.OPPORTUNITY_UPDATED, field="StageName", person__sf_contact_id=ann
    )
    assert (stage.previous_value, stage.new_value) == ("Prospecting", "Closed Won")
    assert stage.opportunity.sf_id == deal and not stage.is_initial_load
    added = Activity.objects.get(activity_type=ActivityType.ADDED_TO_OPPORTUNITY)
    assert (added.person.sf_contact_id, added.opportunity.sf_id, added.role, added.is_primary) == (
        cid,
        other,
        "Influencer",
        False,
    )
    assert not Activity.objects.filter(activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY).exists()

    # getDeleted works over whole minutes: let its window come due.
    SyncState.objects.filter(sobject="OpportunityContactRole").update(
        deleted_checked_until=dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        - dt.timedelta(minutes=3)
    )
    org.delete("OpportunityContactRole", ann_role, backdate_seconds=0)
    ok_cycle(reconcile=True)
    removed = sorted(
        (a.person.sf_contact_id, a.role)
        for a in Activity.objects.filter(activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY).select_related(
            "person"
        )
    )
    assert removed == sorted([(ann, "Decision Maker"), (bob, "Evaluator")])
    assert_database_equals_org(org)
    assert ok_cycle().api_calls == 1
    assert len(activity_keys()) == Activity.objects.count()


def test_deleting_an_opportunity_removes_its_people_and_undelete_adds_them_back(org, synced_settings):
    [contact] = org.create("Contact", {"LastName": "Del"})
    [deal] = org.create("Opportunity", {"Name": "Del", "StageName": "Prospecting", "CloseDate": "2031-01-01"})
    org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact})
    ok_cycle()
    org.delete("Opportunity", deal)
    ok_cycle()
    assert Opportunity.objects.get(sf_id=deal).is_deleted
    assert not Opportunity.live.filter(sf_id=deal).exists()
    assert Activity.objects.filter(activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY).count() == 1
    assert_totals_current()  # the person has no opportunity left, so no totals row
    org.undelete("Opportunity", deal)
    ok_cycle()
    assert (
        Activity.objects.filter(
            activity_type=ActivityType.ADDED_TO_OPPORTUNITY, is_initial_load=False
        ).count()
        == 1
    )
    assert_database_equals_org(org)


def test_a_role_whose_contact_is_invisible_links_up_when_the_contact_becomes_visible(org, synced_settings):
    [contact] = org.create("Contact", {"LastName": "Hidden"})
    org.set_visible("Contact", [contact], False)
    [deal] = org.create(
        "Opportunity", {"Name": "Hidden", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [role] = org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact})
    ok_cycle()
    stored = ContactRole.objects.get(sf_id=role)
    assert stored.person is None and stored.sf_contact_id == contact
    org.set_visible("Contact", [contact], True)  # sharing changes do not bump SystemModstamp
    ok_cycle(reconcile=True)
    assert ContactRole.objects.get(sf_id=role).person.sf_contact_id == contact
    assert (
        Activity.objects.filter(
            activity_type=ActivityType.ADDED_TO_OPPORTUNITY, person__sf_contact_id=contact
        ).count()
        == 1
    )


def test_lead_conversion_and_merges_resolve_to_one_person(org, synced_settings):
    [lead] = org.create(
        "Lead", {"FirstName": "Lee", "LastName": "Lead", "Company": "Leads", "Email": "lee@example.com"}
    )
    [master, loser] = org.create("Contact", {"LastName": "Master"}, {"LastName": "Loser"})
    [deal] = org.create(
        "Opportunity", {"Name": "Merge", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": loser})
    ok_cycle()
    lead_person = Person.objects.get(sf_lead_id=lead)
    converted = org.convert_lead(lead)
    org.merge("Contact", master, loser)
    ok_cycle()
    person = Person.objects.get(sf_lead_id=lead)
    assert person.pk == lead_person.pk or person.sf_contact_id == converted["contactId"]
    assert person.sf_contact_id == converted["contactId"]
    assert Person.objects.filter(sf_lead_id=lead).count() == 1
    assert Activity.objects.filter(
        person=person,
        activity_type=ActivityType.ADDED_TO_OPPORTUNITY,
        opportunity__sf_id=converted["opportunityId"],
    ).exists()
    loser_person = Person.objects.get(sf_contact_id=loser)
    assert loser_person.is_deleted_in_salesforce and loser_person.merged_into.sf_contact_id == master
    assert ContactRole.live.get(sf_opportunity_id=deal).person.sf_contact_id == master
    assert_database_equals_org(org)


def test_fields_that_appear_are_backfilled_and_fields_that_vanish_are_deactivated(org, synced_settings):
    [deal] = org.create(
        "Opportunity",
        {"Name": "Fields", "StageName": "Prospecting", "CloseDate": "2031-01-01", "NextStep": "Call"},
    )
    [contact] = org.create("Contact", {"LastName": "Watcher"})
    org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact})
    ok_cycle()
    org.add_field("Opportunity", "Region__c", "picklist", values=["EMEA", "AMER"])
    org.set_values_silently("Opportunity", "Region__c", {deal: "EMEA"})  # no SystemModstamp change
    org.hide_field("Opportunity", "NextStep")
    SyncState.objects.update(last_describe_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    ok_cycle()
    assert Opportunity.objects.get(sf_id=deal).custom_fields["Region__c"] == "EMEA"
    definition = FieldDefinition.objects.get(sobject="Opportunity", api_name="Region__c")
    assert definition.is_custom and definition.picklist_values == ["EMEA", "AMER"]
    hidden = FieldDefinition.objects.get(sobject="Opportunity", api_name="NextStep")
    assert not hidden.is_active and hidden.deactivated_at is not None
    assert not Activity.objects.filter(field="Region__c").exists()  # visible now, not changed
    org.update("Opportunity", {"Id": deal, "Region__c": "AMER"})
    ok_cycle()
    assert Activity.objects.filter(field="Region__c", previous_value="EMEA", new_value="AMER").count() == 1


def test_a_field_hidden_between_describes_is_found_by_invalid_field(org, synced_settings):
    org.create("Opportunity", {"Name": "Hide", "StageName": "Prospecting", "CloseDate": "2031-01-01"})
    ok_cycle()
    org.hide_field("Opportunity", "Description")
    cycle = ok_cycle()  # INVALID_FIELD: describe at once, query again
    assert not FieldDefinition.objects.get(sobject="Opportunity", api_name="Description").is_active
    assert cycle.api_calls >= 3
    assert_database_equals_org(org)


def test_the_command_prints_counts_and_fails_with_a_one_line_reason(org, synced_settings, capsys):
    org.generate(opportunities=10, people=10, seed=8)
    call_command("salesforce_sync", "--no-progress")
    out = capsys.readouterr().out
    assert "Opportunity" in out and "new      10" in out
    synced_settings.SALESFORCE_CLIENT_SECRET = "wrong"
    from opportunities.sync import service

    service._clients.clear()
    with pytest.raises(CommandError) as error:
        call_command("salesforce_sync", "--no-progress")
    assert "refused the integration user's login" in str(error.value)
    assert "\n" not in str(error.value)


def test_an_unreachable_host_fails_the_cycle_cleanly(org, synced_settings):
    org.process.stop()
    cycle = run_cycle()
    assert cycle.status == SyncStatus.FAILED
    assert "Cannot reach" in cycle.error_message
    assert Opportunity.objects.count() == 0


def test_aggregate_smart_lists_follow_amount_and_stage_changes_synced_from_salesforce(org, synced_settings):
    """The totals the aggregate filters compare are kept by the sync: an opportunity that is won,
    grows, or loses a person moves its people in and out of the lists, cycle by cycle."""
    from smartlists.evaluate import evaluate

    won_over_50k = {
        "logic": "all",
        "filters": [
            {
                "filter": "total_opty_amount",
                "operator": "greater_than",
                "value": 50000,
                "constraints": [{"field": "IsWon", "operator": "is_true"}],
            }
        ],
    }
    without_optys = {
        "logic": "all",
        "filters": [{"filter": "number_of_optys", "operator": "is", "value": [0]}],
    }

    def members(definition: dict) -> set[str | None]:
        return set(evaluate(definition).people.values_list("sf_contact_id", flat=True))

    ann, bob = org.create("Contact", {"LastName": "Ann"}, {"LastName": "Bob"})
    [deal] = org.create(
        "Opportunity", {"Name": "Big", "StageName": "Prospecting", "CloseDate": "2031-01-01", "Amount": 40000}
    )
    [ann_role] = org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": ann})
    ok_cycle()
    assert members(won_over_50k) == set() and members(without_optys) == {bob}
    org.update("Opportunity", {"Id": deal, "StageName": "Closed Won", "Amount": 60000})
    ok_cycle()
    assert members(won_over_50k) == {ann}
    assert_totals_current()
    org.update("OpportunityContactRole", {"Id": ann_role, "ContactId": bob})  # the role moves to Bob
    ok_cycle()
    assert members(won_over_50k) == {bob} and members(without_optys) == {ann}
    assert_database_equals_org(org)
