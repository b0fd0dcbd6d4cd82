"""What the filters mean beyond single operators: same-opportunity constraints, what counts as a
live link, activity filters and their Not-variants, aggregates, logic, composition, time zones."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext

from opportunities.models import ActivityType
from oppsync_site.models import SubscriptionSettings
from people.models import Person
from smartlists.evaluate import Clock, SmartListCycleError, smart_list_people
from smartlists.models import SmartList
from tests.factories import ActivityFactory, ContactRoleFactory, OpportunityFactory, PersonFactory
from tests.unit.smartlists.conftest import NOW, define

pytestmark = pytest.mark.django_db


def members(definition, **options) -> set[int]:
    options.setdefault("clock", Clock(NOW, dt.UTC))
    return set(smart_list_people(definition, **options).values_list("pk", flat=True))


def has(*constraints, logic="all") -> dict:
    return {"logic": logic, "filters": [{"filter": "has_opportunity", "constraints": list(constraints)}]}


EMEA_5K = [
    {"field": "Region__c", "operator": "is", "value": ["EMEA"]},
    {"field": "Amount", "operator": "at_least", "value": 5000},
]


@pytest.fixture
def org(fields):
    """People whose expected members are known, named by what makes them special."""
    p = {
        name: PersonFactory(first_name=name)
        for name in (
            "split",
            "match",
            "orphan",
            "gone_role",
            "gone_opp",
            "merged",
            "deleted",
            "two_roles",
            "none",
        )
    }
    small_emea = OpportunityFactory(amount=Decimal("1000"), custom_fields={"Region__c": "EMEA"})
    large_amer = OpportunityFactory(amount=Decimal("9000"), custom_fields={"Region__c": "AMER"})
    ContactRoleFactory(person=p["split"], opportunity=small_emea)
    ContactRoleFactory(person=p["split"], opportunity=large_amer)
    match = OpportunityFactory(
        amount=Decimal("6000"), custom_fields={"Region__c": "EMEA"}, is_won=True, is_closed=True
    )
    ContactRoleFactory(person=p["match"], opportunity=match, role="Decision Maker", is_primary=True)
    OpportunityFactory(amount=Decimal("9000"), custom_fields={"Region__c": "EMEA"})  # no contact role at all
    ContactRoleFactory(
        person=p["gone_role"],
        opportunity=OpportunityFactory(amount=Decimal("7000"), custom_fields={"Region__c": "EMEA"}),
        is_deleted=True,
    )
    ContactRoleFactory(
        person=p["gone_opp"],
        opportunity=OpportunityFactory(
            amount=Decimal("8000"), custom_fields={"Region__c": "EMEA"}, is_deleted=True
        ),
    )
    p["merged"].merged_into = p["match"]
    p["merged"].save()
    ContactRoleFactory(person=p["merged"], opportunity=match)
    p["deleted"].is_deleted_in_salesforce = True
    p["deleted"].save()
    ContactRoleFactory(person=p["deleted"], opportunity=match, role="Evaluator")
    both = OpportunityFactory(amount=Decimal("2000"), expected_revenue=Decimal("500"))
    ContactRoleFactory(person=p["two_roles"], opportunity=both, role="Evaluator")
    ContactRoleFactory(person=p["two_roles"], opportunity=both, role="Influencer")
    return p, {"small_emea": small_emea, "large_amer": large_amer, "match": match, "both": both}


def ids(people, *names) -> set[int]:
    return {people[n].pk for n in names}


def test_all_constraints_of_one_filter_hit_the_same_opportunity(org):
    people, _ = org
    assert members(has(*EMEA_5K)) == ids(people, "match", "deleted")
    # As two filters, two different opportunities may satisfy them: "split" qualifies then.
    two = {"logic": "all", "filters": [{"filter": "has_opportunity", "constraints": [c]} for c in EMEA_5K]}
    assert members(two) == ids(people, "split", "match", "deleted")


def test_only_live_roles_of_live_opportunities_link_people(org):
    people, _ = org
    everyone_with_one = members(has())
    assert everyone_with_one == ids(people, "split", "match", "deleted", "two_roles")
    assert people["gone_role"].pk not in everyone_with_one and people["gone_opp"].pk not in everyone_with_one


def test_deleted_and_vanished_opportunities_count_with_or_without_opportunity_constraints(fields):
    """Without opportunity constraints "live" is "not a deleted opportunity's id" (no join); with
    them the join decides. Both must agree, also for a link whose opportunity is gone (NULL)."""
    live, deleted = OpportunityFactory(), OpportunityFactory(is_deleted=True)
    people = {name: PersonFactory(first_name=name) for name in ("live", "deleted", "vanished")}
    for name, opportunity in (("live", live), ("deleted", deleted), ("vanished", None)):
        ContactRoleFactory(
            person=people[name], opportunity=opportunity, role="Decision Maker", sf_opportunity_id="006gone"
        )
        _activity(people[name], opportunity, ActivityType.ADDED_TO_OPPORTUNITY, 1, role="Decision Maker")
    role = {"field": "Role", "operator": "is", "value": ["Decision Maker"]}
    named = {"field": "Name", "operator": "is_not_empty"}  # true of every opportunity: joins it
    window = {"field": "date_of_activity", "operator": "in_past", "value": "7 days"}
    for extra in ([], [named]):
        assert members(has(role, *extra)) == ids(people, "live")
        for kind, expected in (
            ("was_added_to_opportunity", {"live"}),
            ("not_was_added_to_opportunity", {"deleted", "vanished"}),
        ):
            definition = {
                "logic": "all",
                "filters": [{"filter": kind, "constraints": [window, role, *extra]}],
            }
            assert members(definition) == ids(people, *expected), (kind, extra)
        counted = {
            "logic": "any",
            "filters": [
                {"filter": "was_added_to_opportunity", "constraints": [window, *extra]},
                {"filter": "has_opportunity", "constraints": [role, *extra]},
            ],
        }
        people_set = smart_list_people(counted, clock=Clock(NOW, dt.UTC))
        assert set(people_set.values_list("pk", flat=True)) == ids(people, "live")
        assert people_set.count() == 1  # the union form PostgreSQL counts with


def test_merge_losers_are_never_members_and_deleted_people_are_unless_excluded(org):
    people, _ = org
    assert people["merged"].pk not in members(has())
    not_deleted = {"filter": "person_field", "field": "is_deleted_in_salesforce", "operator": "is_false"}
    definition = {"logic": "all", "filters": [{"filter": "has_opportunity"}, not_deleted]}
    assert members(definition) == ids(people, "split", "match", "two_roles")


def test_role_and_primary_must_be_on_the_same_role(org):
    people, _ = org
    definition = has(
        {"field": "Role", "operator": "is", "value": ["Decision Maker"]},
        {"field": "IsPrimary", "operator": "is_true"},
    )
    assert members(definition) == ids(people, "match")
    assert (
        members(
            has(
                {"field": "Role", "operator": "is", "value": ["Evaluator"]},
                {"field": "IsPrimary", "operator": "is_true"},
            )
        )
        == set()
    )


def test_aggregates_count_each_live_opportunity_once_and_none_is_zero(org):
    people, _ = org
    total = {
        "logic": "all",
        "filters": [{"filter": "total_opty_amount", "operator": "at_least", "value": 10000}],
    }
    assert members(total) == ids(people, "split")  # 1000 + 9000
    count = {"logic": "all", "filters": [{"filter": "number_of_optys", "operator": "is", "value": [1]}]}
    assert members(count) == ids(people, "match", "deleted", "two_roles")  # two roles, one opportunity
    zero = {"logic": "all", "filters": [{"filter": "number_of_optys", "operator": "is", "value": [0]}]}
    assert members(zero) == ids(people, "orphan", "gone_role", "gone_opp", "none")
    revenue = {
        "logic": "all",
        "filters": [{"filter": "total_opty_expected_revenue", "operator": "between", "value": [400, 600]}],
    }
    assert members(revenue) == ids(people, "two_roles")


def test_aggregates_take_opportunity_constraints(org):
    people, _ = org
    won = {
        "logic": "all",
        "filters": [
            {
                "filter": "total_opty_amount",
                "operator": "greater_than",
                "value": 5000,
                "constraints": [{"field": "IsWon", "operator": "is_true"}],
            }
        ],
    }
    assert members(won) == ids(people, "match", "deleted")


def test_logic_any_all_and_advanced_rules(org):
    people, _ = org
    f1 = {
        "filter": "has_opportunity",
        "constraints": [{"field": "Region__c", "operator": "is", "value": ["AMER"]}],
    }
    f2 = {"filter": "has_opportunity", "constraints": [{"field": "IsWon", "operator": "is_true"}]}
    f3 = {"filter": "person_field", "field": "first_name", "operator": "is", "value": ["two_roles"]}
    assert members({"logic": "any", "filters": [f1, f2, f3]}) == ids(
        people, "split", "match", "deleted", "two_roles"
    )
    assert members({"logic": "all", "filters": [f1, f2]}) == set()
    assert members({"logic": "(1 or 2) and 3", "filters": [f1, f2, f3]}) == set()
    assert members({"logic": "1 or (2 and 3)", "filters": [f1, f2, f3]}) == ids(people, "split")
    assert members({"logic": "3 OR 1", "filters": [f1, f2, f3]}) == ids(people, "split", "two_roles")


def _activity(person, opportunity, kind, days_ago, **extra):
    return ActivityFactory(
        person=person,
        opportunity=opportunity,
        activity_type=kind,
        occurred_at=NOW - dt.timedelta(days=days_ago),
        **extra,
    )


def test_activity_filters_their_not_variants_and_counts(org):
    people, opps = org
    _activity(
        people["match"],
        opps["match"],
        ActivityType.ADDED_TO_OPPORTUNITY,
        5,
        role="Decision Maker",
        is_primary=True,
    )
    _activity(
        people["split"],
        opps["small_emea"],
        ActivityType.ADDED_TO_OPPORTUNITY,
        45,
        role="Evaluator",
        is_primary=False,
    )
    _activity(
        people["two_roles"],
        opps["both"],
        ActivityType.REMOVED_FROM_OPPORTUNITY,
        3,
        role="Evaluator",
        is_primary=False,
    )
    gone = OpportunityFactory(is_deleted=True)
    _activity(
        people["none"], gone, ActivityType.ADDED_TO_OPPORTUNITY, 1, role="Decision Maker"
    )  # deleted opportunity
    for days in (1, 2, 3):
        _activity(
            people["match"],
            opps["match"],
            ActivityType.OPPORTUNITY_UPDATED,
            days,
            field="StageName",
            previous_value="Negotiation",
            new_value="Closed Won",
        )
    _activity(
        people["split"],
        opps["large_amer"],
        ActivityType.OPPORTUNITY_UPDATED,
        2,
        field="Amount",
        previous_value=8000,
        new_value=9000,
    )

    window = {"field": "date_of_activity", "operator": "in_past", "value": "30 days"}
    added = {"logic": "all", "filters": [{"filter": "was_added_to_opportunity", "constraints": [window]}]}
    assert members(added) == ids(people, "match")
    ever = {"logic": "all", "filters": [{"filter": "was_added_to_opportunity"}]}
    assert members(ever) == ids(people, "match", "split")  # not "none": its opportunity is deleted
    with_role = {
        "logic": "all",
        "filters": [
            {
                "filter": "was_added_to_opportunity",
                "constraints": [{"field": "Role", "operator": "is", "value": ["Evaluator"]}],
            }
        ],
    }
    assert members(with_role) == ids(people, "split")
    not_added = {
        "logic": "all",
        "filters": [{"filter": "not_was_added_to_opportunity", "constraints": [window]}],
    }
    assert people["split"].pk in members(not_added)  # added, but outside the window
    assert people["match"].pk not in members(not_added)
    removed = {"logic": "all", "filters": [{"filter": "was_removed_from_opportunity"}]}
    assert members(removed) == ids(people, "two_roles")

    stage = {
        "filter": "opportunity_was_updated",
        "field": "StageName",
        "constraints": [{"field": "new_value", "operator": "is", "value": ["Closed Won"]}],
    }
    assert members({"logic": "all", "filters": [stage]}) == ids(people, "match")
    prev = {
        "filter": "opportunity_was_updated",
        "field": "StageName",
        "constraints": [{"field": "previous_value", "operator": "is", "value": ["Prospecting"]}],
    }
    assert members({"logic": "all", "filters": [prev]}) == set()
    amount_up = {
        "filter": "opportunity_was_updated",
        "field": "Amount",
        "constraints": [{"field": "new_value", "operator": "greater_than", "value": 8500}],
    }
    assert members({"logic": "all", "filters": [amount_up]}) == ids(people, "split")
    three = {
        "filter": "opportunity_was_updated",
        "field": "StageName",
        "constraints": [{"field": "min_number_of_times", "operator": "at_least", "value": 3}],
    }
    four = {
        "filter": "opportunity_was_updated",
        "field": "StageName",
        "constraints": [{"field": "min_number_of_times", "operator": "at_least", "value": 4}],
    }
    assert members({"logic": "all", "filters": [three]}) == ids(people, "match")
    assert members({"logic": "all", "filters": [four]}) == set()
    not_updated = {
        "filter": "not_opportunity_was_updated",
        "field": "StageName",
        "constraints": [{"field": "date_of_activity", "operator": "in_past", "value": "2 days"}],
    }
    result = members({"logic": "all", "filters": [not_updated]})
    assert people["match"].pk not in result and people["split"].pk in result


def test_member_of_smart_list_composes_and_refuses_cycles(org):
    people, _ = org
    won = SmartList.objects.create(name="Won", definition=has({"field": "IsWon", "operator": "is_true"}))
    composed = {
        "logic": "all",
        "filters": [{"filter": "member_of_smart_list", "operator": "is", "value": [won.pk]}],
    }
    assert members(composed) == ids(people, "match", "deleted")
    outside = {
        "logic": "all",
        "filters": [{"filter": "member_of_smart_list", "operator": "is_not", "value": [won.pk]}],
    }
    assert people["match"].pk not in members(outside) and people["split"].pk in members(outside)
    won.definition = composed  # a list that contains itself
    won.save()
    with pytest.raises(SmartListCycleError):
        members({"logic": "all", "filters": [{"filter": "member_of_smart_list", "value": [won.pk]}]})


def test_a_custom_field_added_later_is_a_constraint_at_once(org):
    people, opps = org
    opps["match"].custom_fields["Tier__c"] = "Gold"
    opps["match"].save()
    definition = has({"field": "Tier__c", "operator": "is", "value": ["Gold"]})
    from smartlists.validation import DefinitionError

    with pytest.raises(DefinitionError):
        members(definition)  # describe has not shown it yet
    define("Opportunity", "Tier__c", "Tier", "picklist", ["Gold", "Silver"])
    assert members(definition) == ids(people, "match", "deleted")


def test_time_frames_follow_the_subscription_time_zone(fields):
    person = PersonFactory()
    # 23:30 UTC on Nov 17 is already Nov 18 in Tokyo (NOW is Nov 18 15:30 UTC = Nov 19 00:30 JST).
    opportunity = OpportunityFactory(
        last_modified_in_salesforce=dt.datetime(2026, 11, 17, 23, 30, tzinfo=dt.UTC)
    )
    ContactRoleFactory(person=person, opportunity=opportunity)
    frame = lambda name: has({"field": "LastModifiedDate", "operator": "in_time_frame", "value": name})  # noqa: E731
    assert members(frame("yesterday")) == {person.pk}  # in UTC
    settings = SubscriptionSettings.load()
    settings.time_zone = "Asia/Tokyo"
    settings.save()
    tokyo = Clock.current(NOW)
    assert members(frame("yesterday"), clock=tokyo) == {person.pk}  # Nov 18 in Tokyo is "yesterday" there too
    assert members(frame("today"), clock=tokyo) == set()
    settings.time_zone = "America/Los_Angeles"
    settings.save()
    los_angeles = Clock.current(NOW)  # Nov 18 07:30 there; the change was Nov 17 15:30 there
    assert members(frame("yesterday"), clock=los_angeles) == {person.pk}
    settings.time_zone = "Pacific/Kiritimati"  # UTC+14: NOW is Nov 19 05:30, the change Nov 18 13:30
    settings.save()
    assert members(frame("yesterday"), clock=Clock.current(NOW)) == {person.pk}
    assert members(frame("today"), clock=Clock.current(NOW)) == set()
    settings.time_zone = "UTC"
    settings.save()
    assert members(frame("today"), clock=Clock.current(dt.datetime(2026, 11, 17, 23, 45, tzinfo=dt.UTC))) == {
        person.pk
    }


def test_a_list_counts_what_it_lists_and_a_later_filter_counts_its_own_rows(fields):
    """The count of a list may run through sets of people (PostgreSQL); a search added to the
    members must not be answered by that count."""
    web, linked, neither = PersonFactory(lead_source="Web"), PersonFactory(), PersonFactory()
    ContactRoleFactory(person=linked)
    people = smart_list_people(
        {
            "logic": "1 or 2",
            "filters": [
                # A constraint no totals column holds, so the filter is a set of people.
                {
                    "filter": "has_opportunity",
                    "constraints": [{"field": "StageName", "operator": "is_not_empty"}],
                },
                {"filter": "person_field", "field": "lead_source", "operator": "is", "value": ["Web"]},
            ],
        }
    ).order_by("id")
    with CaptureQueriesContext(connection) as counted:
        assert people.count() == 2 == len(people)
    # The count's and the page's statements (not the savepoint and work_mem around the count).
    count_sql, page_sql = (
        q["sql"]
        for q in counted
        if q["sql"].startswith("SELECT") and "work_mem" not in q["sql"] and "set_config" not in q["sql"]
    )
    postgresql = connection.vendor == "postgresql"
    # PostgreSQL counts the filter as one set of people; the page walks EXISTS (SQLite reads
    # the set both times).
    assert not postgresql or ("EXISTS" not in count_sql and "EXISTS" in page_sql)
    assert set(people) == {web, linked} and neither not in people
    with CaptureQueriesContext(connection) as searched:
        assert people.filter(pk=web.pk).count() == 1
    assert not postgresql or "EXISTS" in searched[0]["sql"]  # the members' own query
    assert people.exclude(pk=web.pk).count() == 1
    assert people.all()[:1].count() == 1 and people.none().count() == 0
    # Any other way to change the rows counts them, not the list.
    assert people.complex_filter(Q(pk=web.pk)).count() == 1
    assert (people & Person.objects.filter(pk=web.pk)).count() == 1
    assert (people | Person.objects.filter(pk=neither.pk)).count() == 3
    assert people.values("lead_source").distinct().count() == 2
    assert people.order_by().values("lead_source").annotate(n=Count("pk")).count() == 2
