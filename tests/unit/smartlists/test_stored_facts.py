"""Has Opportunity on one picklist value and Was Added to / Removed from Opportunity in a window
read the person's totals row (`picklist_values`, `last_added_at`, `last_removed_at`) where
`TotalsCoverage` says every row holds them. They must select exactly the people the roles and
activities select, before and after the data changes, and fall back to the roles and activities
for anything the rows do not cover."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from opportunities.models import ActivityType, PersonOpportunityTotals, TotalsCoverage
from opportunities.sync.tasks import totals_coverage_ensure
from opportunities.totals import coverage_is_current
from people.models import Person
from smartlists.evaluate import Clock, StoredFacts, filter_q, smart_list_people, stored_q
from smartlists.registry import Catalog
from smartlists.validation import check_definition
from tests.factories import ActivityFactory, ContactRoleFactory, OpportunityFactory, PersonFactory
from tests.unit.smartlists.conftest import NOW, define

pytestmark = pytest.mark.django_db

ADDED, REMOVED = ActivityType.ADDED_TO_OPPORTUNITY, ActivityType.REMOVED_FROM_OPPORTUNITY


@pytest.fixture
def org(fields):
    def deal(region=None, stage="Prospecting", *, deleted=False):
        custom = {"Region__c": region} if region is not None else {}
        return OpportunityFactory(
            stage_name=stage, custom_fields=custom, is_deleted=deleted, amount=Decimal("10")
        )

    emea, amer, apac, emea_2 = deal("EMEA"), deal("AMER", "Closed Won"), deal("APAC"), deal("EMEA")
    blank, gone = deal("", ""), deal("EMEA", deleted=True)
    crowd = {
        name: PersonFactory(first_name=name)
        for name in (
            "none", "emea", "amer", "two_emea", "dead_role", "dead_opportunity", "blank", "future",
            "future_only", "removed_only",
        )
    }  # fmt: skip
    ContactRoleFactory(person=crowd["emea"], opportunity=emea)
    ContactRoleFactory(person=crowd["amer"], opportunity=amer)
    for opportunity in (emea, emea_2, apac):
        ContactRoleFactory(person=crowd["two_emea"], opportunity=opportunity)
    ContactRoleFactory(person=crowd["two_emea"], opportunity=emea, role="Evaluator")  # counted once
    ContactRoleFactory(person=crowd["dead_role"], opportunity=emea, is_deleted=True)
    ContactRoleFactory(person=crowd["dead_opportunity"], opportunity=gone)
    ContactRoleFactory(person=crowd["blank"], opportunity=blank)
    ContactRoleFactory(person=crowd["future"], opportunity=apac)

    def happened(name, kind, opportunity, days_ago):
        ActivityFactory(
            person=crowd[name],
            opportunity=opportunity,
            activity_type=kind,
            occurred_at=NOW - dt.timedelta(days=days_ago),
        )

    happened("emea", ADDED, emea, 5)
    happened("amer", ADDED, amer, 40)
    happened("amer", REMOVED, amer, 2)
    happened("two_emea", ADDED, emea_2, 20)
    happened("two_emea", ActivityType.OPPORTUNITY_UPDATED, emea_2, 1)  # not an Added one
    # The latest is after the window ends (a clock ahead): the earlier one is in the window.
    happened("future", ADDED, apac, -1)
    happened("future", ADDED, apac, 10)
    happened("future_only", ADDED, apac, -1)
    happened("dead_opportunity", ADDED, gone, 1)  # its opportunity is deleted: never counts
    happened("removed_only", REMOVED, emea, 3)
    crowd["opportunities"] = {"emea": emea, "amer": amer, "apac": apac, "gone": gone}
    return crowd


PICKLIST_CONSTRAINTS = [
    ({"field": "Region__c", "operator": "is", "value": ["EMEA"]}, {"emea", "two_emea"}),
    ({"field": "Region__c", "operator": "is", "value": ["EMEA", "APAC"]}, {"emea", "two_emea", "future"}),
    ({"field": "Region__c", "operator": "is", "value": ["AMER"]}, {"amer"}),
    ({"field": "StageName", "operator": "is", "value": ["Closed Won", "Negotiation"]}, {"amer"}),
    (
        {"field": "StageName", "operator": "is", "value": ["Prospecting"]},
        {"emea", "two_emea", "future"},
    ),
]
WINDOWS = [
    [],
    [{"field": "date_of_activity", "operator": "in_past", "value": "30 days"}],
    [{"field": "date_of_activity", "operator": "in_past", "value": "7 days"}],
    [{"field": "date_of_activity", "operator": "after", "value": "2026-11-10"}],
    [{"field": "date_of_activity", "operator": "on_or_after", "value": "2026-10-01"}],
    [{"field": "date_of_activity", "operator": "between", "value": ["2026-10-20", "2026-11-25"]}],
    [{"field": "date_of_activity", "operator": "in_time_frame", "value": "this_month"}],
    [
        {"field": "date_of_activity", "operator": "in_past", "value": "30 days"},
        {"field": "min_number_of_times", "operator": "at_least", "value": 1},
    ],
]
ACTIVITY_FILTERS = [
    "was_added_to_opportunity",
    "not_was_added_to_opportunity",
    "was_removed_from_opportunity",
    "not_was_removed_from_opportunity",
]


def _item(single_filter):
    return check_definition({"logic": "all", "filters": [single_filter]}, Catalog.load()).filters[0]


def _names(q) -> set[str]:
    return set(Person.objects.filter(q).values_list("first_name", flat=True))


def _both_ways(single_filter) -> tuple[set[str], set[str]]:
    """(members through the totals rows, members through the roles / activities)."""
    clock = Clock(NOW, dt.UTC)
    item = _item(single_filter)
    facts = StoredFacts.load()
    assert stored_q(item, clock, facts) is not None, single_filter
    return (
        _names(filter_q(item, clock, lambda _: None, facts)),
        _names(filter_q(item, clock, lambda _: None, None)),
    )


@pytest.mark.parametrize(("constraint", "expected"), PICKLIST_CONSTRAINTS)
def test_has_opportunity_on_a_picklist_reads_the_row_and_selects_what_the_roles_select(
    org, constraint, expected
):
    from_rows, from_roles = _both_ways({"filter": "has_opportunity", "constraints": [constraint]})
    assert from_roles == expected
    assert from_rows == expected


@pytest.mark.parametrize("window", range(len(WINDOWS)))
@pytest.mark.parametrize("activity_filter", ACTIVITY_FILTERS)
def test_activity_windows_read_the_row_and_select_what_the_activities_select(org, activity_filter, window):
    from_rows, from_activities = _both_ways({"filter": activity_filter, "constraints": WINDOWS[window]})
    assert from_rows == from_activities


def test_the_activity_cases_have_teeth(org):
    # The expected members of the window that matters most, spelled out (incl. the clock ahead).
    in_30_days = {"filter": "was_added_to_opportunity", "constraints": WINDOWS[1]}
    assert _both_ways(in_30_days)[0] == {"emea", "two_emea", "future"}
    removed_ever = {"filter": "was_removed_from_opportunity", "constraints": []}
    assert _both_ways(removed_ever)[0] == {"amer", "removed_only"}
    not_removed = {"filter": "not_was_removed_from_opportunity", "constraints": WINDOWS[2]}
    assert _both_ways(not_removed)[0] == set(Person.objects.values_list("first_name", flat=True)) - {
        "amer",
        "removed_only",
    }
    row = PersonOpportunityTotals.objects.get(person=org["removed_only"])
    assert (row.number_of_optys, row.last_removed_at) == (0, NOW - dt.timedelta(days=3))


def test_the_activities_answer_for_latest_times_after_the_window_only_while_there_are_some(org):
    clock = Clock(NOW, dt.UTC)
    in_30_days = _item({"filter": "was_added_to_opportunity", "constraints": WINDOWS[1]})
    assert "EXISTS" in str(Person.objects.filter(stored_q(in_30_days, clock, StoredFacts.load())).query)
    Person.objects.get(first_name="future_only").activities.all().delete()
    future = Person.objects.get(first_name="future")
    future.activities.filter(occurred_at__gt=NOW).delete()
    stored = stored_q(in_30_days, clock, StoredFacts.load())
    assert "EXISTS" not in str(Person.objects.filter(stored).query)
    assert _names(stored) == {"emea", "two_emea", "future"}


def test_rows_follow_changes_to_opportunities_roles_and_activities(org):
    emea = org["opportunities"]["emea"]
    emea.custom_fields = {"Region__c": "AMER"}
    emea.save()
    in_emea = {"filter": "has_opportunity", "constraints": [PICKLIST_CONSTRAINTS[0][0]]}
    assert _both_ways(in_emea) == ({"two_emea"}, {"two_emea"})
    apac = org["opportunities"]["apac"]
    apac.is_deleted = True
    apac.save()
    added_30 = {"filter": "was_added_to_opportunity", "constraints": WINDOWS[1]}
    assert _both_ways(added_30) == ({"emea", "two_emea"}, {"emea", "two_emea"})
    org["emea"].activities.filter(activity_type=ADDED).first().delete()
    assert _both_ways(added_30) == ({"two_emea"}, {"two_emea"})
    ContactRoleFactory(person=org["none"], opportunity=org["opportunities"]["amer"])
    in_amer = {"filter": "has_opportunity", "constraints": [PICKLIST_CONSTRAINTS[2][0]]}
    assert _both_ways(in_amer) == ({"amer", "none", "emea", "two_emea"},) * 2


def test_what_the_rows_do_not_cover_is_read_from_the_roles_and_activities(org):
    clock = Clock(NOW, dt.UTC)
    facts = StoredFacts.load()
    not_covered = [
        # Two constraints: both must hold for the same opportunity.
        {"filter": "has_opportunity", "constraints": [
            PICKLIST_CONSTRAINTS[0][0], {"field": "Amount", "operator": "at_least", "value": 5}]},
        {"filter": "has_opportunity", "constraints": [{"field": "Region__c", "operator": "is_not", "value": ["EMEA"]}]},
        {"filter": "was_added_to_opportunity", "constraints": [
            {"field": "date_of_activity", "operator": "before", "value": "2026-11-10"}]},
        {"filter": "was_added_to_opportunity", "constraints": [
            {"field": "Role", "operator": "is", "value": ["Decision Maker"]}]},
        # A window that has ended: most latest times lie after it.
        {"filter": "was_removed_from_opportunity", "constraints": [
            {"field": "date_of_activity", "operator": "between", "value": ["2026-10-20", "2026-11-15"]}]},
        {"filter": "was_added_to_opportunity", "constraints": [
            {"field": "date_of_activity", "operator": "in_time_frame", "value": "last_month"}]},
        {"filter": "was_added_to_opportunity", "constraints": [
            {"field": "min_number_of_times", "operator": "at_least", "value": 2}]},
    ]  # fmt: skip
    for single_filter in not_covered:
        assert stored_q(_item(single_filter), clock, facts) is None, single_filter
    # Without coverage (before the first rebuild) nothing reads the rows.
    TotalsCoverage.objects.all().delete()
    uncovered = StoredFacts.load()
    for constraint, _expected in PICKLIST_CONSTRAINTS:
        item = _item({"filter": "has_opportunity", "constraints": [constraint]})
        assert stored_q(item, clock, uncovered) is None
    assert (
        stored_q(_item({"filter": "was_added_to_opportunity", "constraints": []}), clock, uncovered) is None
    )


def test_a_picklist_field_that_appears_is_covered_by_the_next_rebuild(org):
    clock = Clock(NOW, dt.UTC)
    apac = org["opportunities"]["apac"]
    apac.custom_fields = {**apac.custom_fields, "Segment__c": "Enterprise"}
    apac.save()
    define("Opportunity", "Segment__c", "Segment", "picklist", ["Enterprise", "SMB"])
    enterprise = {
        "filter": "has_opportunity",
        "constraints": [{"field": "Segment__c", "operator": "is", "value": ["Enterprise"]}],
    }
    assert not coverage_is_current()
    assert stored_q(_item(enterprise), clock, StoredFacts.load()) is None  # the roles answer
    definition = {"logic": "all", "filters": [enterprise]}
    before = set(smart_list_people(definition, clock=clock).values_list("first_name", flat=True))
    assert before == {"two_emea", "future"}
    assert totals_coverage_ensure() == "rebuilt"
    assert coverage_is_current()
    assert totals_coverage_ensure() == "current"
    assert _both_ways(enterprise) == (before, before)
    assert set(smart_list_people(definition, clock=clock).values_list("first_name", flat=True)) == before
