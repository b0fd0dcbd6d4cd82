"""P11 case 6 and 8 for smart lists: a definition evaluation cannot run is refused where it is
saved or previewed, with a 400 naming the place, the field and the value; a list stored before
validation got stricter answers the same 400 on every read; window arithmetic stops at the ends of
the calendar; values of the wrong type in custom fields never stop a query; relative windows on
datetimes follow the subscription's wall clock; logic errors name the right token; multi-select
picklists match item by item."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
from django.db.models import F
from rest_framework.test import APIClient

from opportunities.totals import picklist_fields_to_cover, rebuild_all_totals
from smartlists.clock import EARLIEST, LATEST
from smartlists.evaluate import Clock, condition, shift, smart_list_people
from smartlists.models import SmartList
from tests.factories import ActivityFactory, ContactRoleFactory, OpportunityFactory, PersonFactory
from tests.unit.smartlists.conftest import define

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(client: APIClient, url: str, body: dict) -> object:
    # json.dumps escapes lone surrogates as a real client does (\ud800); the test client's own
    # renderer would fail to encode them before the request is made.
    return client.post(url, json.dumps(body), content_type="application/json")


def opportunity_filter(field: str, operator: str, value: object) -> dict:
    return {
        "logic": "all",
        "filters": [
            {
                "filter": "has_opportunity",
                "constraints": [{"field": field, "operator": operator, "value": value}],
            }
        ],
    }


# (definition, where, words the message must hold): each gave a 500 (OverflowError, ValueError,
# or a database error on PostgreSQL) before validation refused it.
UNRUNNABLE = [
    (opportunity_filter("CloseDate", "in_past", "9999 years"), "filters[0].constraints[0].value", "9999 years"),
    (opportunity_filter("CloseDate", "in_future", "9999 years"), "filters[0].constraints[0].value", "1000 years"),
    (opportunity_filter("LastModifiedDate", "in_past", "9999 years"), "filters[0].constraints[0].value", "Last Modified Date"),
    (opportunity_filter("CloseDate", "is", ["9999-12-31"]), "filters[0].constraints[0].value", "9999-12-31"),
    (opportunity_filter("Signed__c", "is", ["9999-12-31"]), "filters[0].constraints[0].value", "Signed On"),
    (opportunity_filter("LastModifiedDate", "after", "9999-12-31T23:59:59.999999"), "filters[0].constraints[0].value", "9999-12-31T23:59:59.999999"),
    (opportunity_filter("LastModifiedDate", "before", "0001-01-01T00:00:00+01:00"), "filters[0].constraints[0].value", "0001-01-01T00:00:00+01:00"),
    (opportunity_filter("LastModifiedDate", "between", ["2020-01-01", "9999-12-31"]), "filters[0].constraints[0].value", "1700-01-01 to 4000-12-31"),
    (opportunity_filter("Champion__c", "contains", "a\x00b"), "filters[0].constraints[0].value", "NUL"),
    (opportunity_filter("Region__c", "is", ["\ud800"]), "filters[0].constraints[0].value[0]", "surrogate"),
    ({"filters": [{"filter": "has_opportunity", "note": "\x00"}]}, "filters[0].note", "NUL"),
    ({"filters": [{"filter": "was_added_to_opportunity", "constraints": [{"field": "date_of_activity", "operator": "after", "value": "9999-12-31"}]}]},
     "filters[0].constraints[0].value", "Date of Activity"),
    ({"filters": [{"filter": "person_field", "field": "created_at", "operator": "on_or_after", "value": "9999-12-31"}]}, "filters[0].value", "9999-12-31"),
    ({"filters": [{"filter": "number_of_optys", "operator": "less_than", "value": 0.5}]}, "filters[0].value", "whole number"),
    ({"filters": [{"filter": "total_opty_amount", "operator": "at_least", "value": 0.001}]}, "filters[0].value", "cent"),
    (opportunity_filter("Amount", "at_least", 1e-300), "filters[0].constraints[0].value", "decimal places"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "where", "words"), UNRUNNABLE)
def test_what_evaluation_cannot_run_is_a_named_400_on_save_and_preview(
    marketer, typed_people, definition, where, words
):
    client = client_for(marketer)
    for response in (
        post(client, "/api/v1/smart-lists/", {"name": "Far", **definition}),
        post(client, "/api/v1/smart-lists/preview/", definition),
    ):
        assert response.status_code == 400, response.content
        body = response.json()
        assert words in " ".join(body.get(where, [])), body
    assert not SmartList.objects.exists()


# A database takes no NUL or lone surrogate at all: such a list cannot have been stored.
STORABLE = [case for case in UNRUNNABLE if case[2] not in ("NUL", "surrogate")]


@pytest.mark.parametrize(("definition", "where", "words"), STORABLE)
def test_a_list_saved_before_validation_got_stricter_is_a_named_400_on_every_read(
    viewer, typed_people, definition, where, words
):
    # A row written before these checks existed: no save path accepts it today.
    legacy = SmartList.objects.create(name="Legacy", definition=definition)
    client = client_for(viewer)
    person = typed_people[0][0]
    for url in (
        f"/api/v1/smart-lists/{legacy.pk}/members/",
        f"/api/v1/smart-lists/{legacy.pk}/members.csv",
        f"/api/v1/smart-lists/{legacy.pk}/members/{person.pk}/why/",
    ):
        response = client.get(url)
        assert response.status_code == 400, (url, response.content)
        assert words in " ".join(response.json().get(where, [])), (url, response.json())
    # The list itself still reads (its definition is shown, so it can be mended).
    assert client.get(f"/api/v1/smart-lists/{legacy.pk}/").status_code == 200


def test_window_arithmetic_stops_at_the_ends_of_the_calendar(typed_people):
    kiritimati = zoneinfo.ZoneInfo("Pacific/Kiritimati")  # UTC+14
    assert shift(dt.date(9999, 12, 1), 2, "month") == dt.date.max
    assert shift(dt.date(2, 1, 1), -3, "year") == dt.date.min
    assert shift(dt.datetime(9999, 12, 31, tzinfo=dt.UTC), 1, "day", kiritimati) == LATEST
    assert shift(dt.datetime(1, 1, 2, tzinfo=dt.UTC), -1, "week", kiritimati) == EARLIEST
    # (Kiritimati's offset in year 1 is its local mean time, -10:29: a fixed +14 shows the edge.)
    clock = Clock(dt.datetime(2026, 11, 18, tzinfo=dt.UTC), dt.timezone(dt.timedelta(hours=14)))
    assert clock.midnight(dt.date.min) == EARLIEST  # 0001-01-01 00:00 at +14 is before year 1 in UTC
    # Conditions on the last day and moment of the calendar build and run (past any validation).
    conditions = [
        condition(F("close_date"), "date", "is", [dt.date.max], clock),
        condition(F("close_date"), "date", "after", dt.date.max, clock),
        condition(F("last_modified_in_salesforce"), "datetime", "is", [dt.date.max], clock),
        condition(F("last_modified_in_salesforce"), "datetime", "on_or_before", dt.date.min, clock),
        condition(F("last_modified_in_salesforce"), "datetime", "after", dt.datetime.max, clock),
        condition(F("last_modified_in_salesforce"), "datetime", "in_future", (9999, "year"), clock),
        condition(F("close_date"), "date", "in_past", (9999, "year"), clock),
    ]
    from opportunities.models import Opportunity

    for where in conditions:
        list(Opportunity.objects.filter(where).values_list("pk", flat=True))


@pytest.mark.parametrize(
    ("custom", "constraint"),
    [
        ({"Score__c": "abc"}, {"field": "Score__c", "operator": "greater_than", "value": 1}),
        ({"Score__c": 1e25}, {"field": "Score__c", "operator": "greater_than", "value": 1}),
        ({"Score__c": "1e999999"}, {"field": "Score__c", "operator": "at_least", "value": 1}),
        ({"Signed__c": "not a date"}, {"field": "Signed__c", "operator": "after", "value": "2020-01-01"}),
        ({"Signed__c": "2020-02-30"}, {"field": "Signed__c", "operator": "after", "value": "2020-01-01"}),
        ({"Signed__c": 5}, {"field": "Signed__c", "operator": "is_not", "value": ["2020-01-01"]}),
    ],
)
def test_a_custom_field_holding_another_type_never_stops_the_query(viewer, fields, custom, constraint):
    """A value synced before the field's type changed in Salesforce reads as empty (PostgreSQL
    raised `invalid input syntax` or `numeric field overflow` for the whole list)."""
    odd = PersonFactory(first_name="Odd")
    ContactRoleFactory(person=odd, opportunity=OpportunityFactory(custom_fields=custom))
    fine = PersonFactory(first_name="Fine")
    ContactRoleFactory(
        person=fine, opportunity=OpportunityFactory(custom_fields={"Score__c": 50, "Signed__c": "2024-05-01"})
    )
    definition = {"logic": "all", "filters": [{"filter": "has_opportunity", "constraints": [constraint]}]}
    response = post(client_for(viewer), "/api/v1/smart-lists/preview/", definition)
    assert response.status_code == 200, response.content
    names = {row["first_name"] for row in response.json()["results"]}
    assert "Fine" in names  # 50 > 1, 2024-05-01 after 2020-01-01 and not 2020-01-01
    if custom in ({"Score__c": "abc"}, {"Signed__c": "not a date"}):
        # Text is no number or date on either database. (SQLite's casts read "2020-02-30" as
        # 1 March and "1e999999" as infinity, where PostgreSQL now reads neither.)
        assert "Odd" not in names
    if custom == {"Score__c": 1e25}:
        assert "Odd" in names  # a number too wide for NUMERIC(30, 10), still a number


# --- case 8 ------------------------------------------------------------------------------------
def test_relative_month_windows_on_datetimes_follow_the_subscription_wall_clock(fields):
    """At 20:00 UTC on 28 February it is 05:00 on 1 March in Tokyo: "in past 1 month" starts at
    05:00 on 1 February in Tokyo (20:00 UTC on 31 January), not a month before the UTC date."""
    now = dt.datetime(2026, 2, 28, 20, 0, tzinfo=dt.UTC)
    clock = Clock(now, zoneinfo.ZoneInfo("Asia/Tokyo"))
    moments = {
        "before_the_window": dt.datetime(2026, 1, 30, 12, 0, tzinfo=dt.UTC),
        "in_the_window": dt.datetime(2026, 2, 1, 0, 0, tzinfo=dt.UTC),
        "next_month_in_tokyo": dt.datetime(2026, 3, 30, 12, 0, tzinfo=dt.UTC),  # before 1 April 05:00 JST
    }
    for name, moment in moments.items():
        person = PersonFactory(first_name=name)
        opportunity = OpportunityFactory(last_modified_in_salesforce=moment)
        ContactRoleFactory(person=person, opportunity=opportunity)
        ActivityFactory(
            person=person, opportunity=opportunity, activity_type="added_to_opportunity", occurred_at=moment
        )
    rebuild_all_totals()

    def members(definition_filter):
        people = smart_list_people({"logic": "all", "filters": [definition_filter]}, clock=clock)
        return set(people.values_list("first_name", flat=True))

    def modified(operator):
        return {
            "filter": "has_opportunity",
            "constraints": [{"field": "LastModifiedDate", "operator": operator, "value": "1 month"}],
        }

    assert members(modified("in_past")) == {"in_the_window"}
    assert members(modified("in_future")) == {"next_month_in_tokyo"}
    # The activity window of Was Added (read from the totals rows) starts at the same moment.
    added = {
        "filter": "was_added_to_opportunity",
        "constraints": [{"field": "date_of_activity", "operator": "in_past", "value": "1 month"}],
    }
    assert members(added) == {"in_the_window"}


def test_a_rule_ending_in_an_operator_names_that_operator(marketer, fields):
    body = post(
        client_for(marketer),
        "/api/v1/smart-lists/preview/",
        {"logic": "1 and 2 or", "filters": [{"filter": "has_opportunity"}] * 2},
    ).json()
    assert body["logic"] == ["the rule ends after 'or' at position 9: a filter number or '(' must follow it"]


@pytest.mark.parametrize("rule", ["0x1", "0b1", "1_0", "0o1", "\u0661"])
def test_only_plain_decimal_filter_numbers_are_filters(marketer, fields, rule):
    response = post(
        client_for(marketer),
        "/api/v1/smart-lists/preview/",
        {"logic": rule, "filters": [{"filter": "has_opportunity"}]},
    )
    assert response.status_code == 400, response.content
    assert f"unexpected {rule!r} at position 1" in response.json()["logic"][0]


@pytest.fixture
def markets(fields):
    """A multi-select picklist on opportunities and on contacts, stored as Salesforce sends it."""
    define("Opportunity", "Markets__c", "Markets", "multipicklist", ["Retail", "Health", "Energy"])
    define("Contact", "Interests__c", "Interests", "multipicklist", ["Retail", "Health", "Energy"])
    people = {}
    for name, value in (
        ("both", "Retail;Health"),
        ("health", "Health"),
        ("retailer", "Retailer"),
        ("none", None),
    ):
        person = PersonFactory(first_name=name, custom_fields={"Interests__c": value} if value else {})
        custom = {"Markets__c": value} if value else {}
        ContactRoleFactory(person=person, opportunity=OpportunityFactory(custom_fields=custom))
        people[name] = person
    rebuild_all_totals()
    return people


def test_a_multi_select_picklist_is_matches_any_value_its_set_holds(viewer, markets):
    def members(operator, values, *, on_person=False):
        if on_person:
            chosen = {
                "filter": "person_field",
                "field": "Interests__c",
                "operator": operator,
                "value": values,
            }
        else:
            chosen = {
                "filter": "has_opportunity",
                "constraints": [{"field": "Markets__c", "operator": operator, "value": values}],
            }
        response = post(client_for(viewer), "/api/v1/smart-lists/preview/", {"filters": [chosen]})
        assert response.status_code == 200, response.content
        return {row["first_name"] for row in response.json()["results"]}

    for on_person in (False, True):
        assert members("is", ["Retail"], on_person=on_person) == {"both"}  # not "Retailer"
        assert members("is", ["Health"], on_person=on_person) == {"both", "health"}
        assert members("is", ["Energy", "Retail"], on_person=on_person) == {"both"}
        assert members("is_not", ["Retail"], on_person=on_person) == {"health", "retailer", "none"}
        assert members("is_not", ["Retail", "Health"], on_person=on_person) == {"retailer", "none"}
    # The totals rows do not hold multi-select picklists: the roles answer, item by item.
    assert "Markets__c" not in picklist_fields_to_cover()
    catalog = client_for(viewer).get("/api/v1/filters/").json()
    has_opportunity = next(entry for entry in catalog if entry["filter"] == "has_opportunity")
    markets_field = next(c for c in has_opportunity["constraints"] if c["field"] == "Markets__c")
    assert markets_field["type"] == "picklist" and markets_field["multiple"] is True


def test_a_multi_select_picklist_value_is_one_item(marketer, markets):
    response = post(
        client_for(marketer),
        "/api/v1/smart-lists/preview/",
        opportunity_filter("Markets__c", "is", ["Retail;Health"]),
    )
    assert response.status_code == 400
    assert "without ';'" in response.json()["filters[0].constraints[0].value"][0]
