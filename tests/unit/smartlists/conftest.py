"""Hand-built people and opportunities whose expected smart-list members are known."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from opportunities.totals import rebuild_all_totals
from smartlists.evaluate import Clock
from tests.factories import ContactRoleFactory, OpportunityFactory, PersonFactory, field_definition

NOW = dt.datetime(2026, 11, 18, 15, 30, tzinfo=dt.UTC)  # a Wednesday


def define(
    sobject: str,
    api_name: str,
    label: str,
    field_type: str,
    values: list[str] | None = None,
    active: bool = True,
):
    return field_definition(sobject, api_name, label, field_type, values, active=active)


@pytest.fixture
def fields(db):
    define("Opportunity", "Name", "Name", "string")
    define("Opportunity", "StageName", "Stage", "picklist", ["Prospecting", "Negotiation", "Closed Won"])
    define("Opportunity", "Amount", "Amount", "currency")
    define("Opportunity", "ExpectedRevenue", "Expected Amount", "currency")
    define("Opportunity", "Probability", "Probability (%)", "percent")
    define("Opportunity", "CloseDate", "Close Date", "date")
    define("Opportunity", "LastModifiedDate", "Last Modified Date", "datetime")
    define("Opportunity", "IsWon", "Won", "boolean")
    define("Opportunity", "IsClosed", "Closed", "boolean")
    define("Opportunity", "Region__c", "Region", "picklist", ["EMEA", "AMER", "APAC"])
    define("Opportunity", "Score__c", "Deal Score", "double")
    define("Opportunity", "Signed__c", "Signed On", "date")
    define("Opportunity", "Champion__c", "Champion", "string")
    define("Opportunity", "Strategic__c", "Strategic", "boolean")
    define("Opportunity", "Legacy__c", "Legacy Code", "string", active=False)
    define(
        "OpportunityContactRole", "Role", "Role", "picklist", ["Decision Maker", "Evaluator", "Influencer"]
    )
    define("Contact", "Persona__c", "Persona", "picklist", ["Buyer", "User"])
    # The totals rows cover the picklist fields and activity times from the start, as after a
    # rebuild: the filters these tests check read them where they can (the role and activity
    # paths are checked against them in test_stored_totals.py).
    rebuild_all_totals()


def day(offset: int) -> dt.date:
    return (NOW + dt.timedelta(days=offset)).date()


# One opportunity per person: every typed field, with empty values and edge values.
ROWS = [
    {"name": "Acme Renewal", "stage_name": "Prospecting", "amount": Decimal("1000"), "probability": Decimal("10"),
     "close_date": day(-40), "last_modified_in_salesforce": NOW - dt.timedelta(hours=2), "is_won": False,
     "custom_fields": {"Region__c": "EMEA", "Score__c": 10, "Signed__c": day(-1).isoformat(), "Champion__c": "Ada", "Strategic__c": True}},
    {"name": "acme expansion", "stage_name": "Closed Won", "amount": Decimal("5000"), "probability": Decimal("100"),
     "close_date": day(-5), "last_modified_in_salesforce": NOW - dt.timedelta(days=3), "is_won": True,
     "custom_fields": {"Region__c": "AMER", "Score__c": 55.5, "Signed__c": day(-20).isoformat(), "Strategic__c": False}},
    {"name": "Beta Deal", "stage_name": "Negotiation", "amount": Decimal("9000"), "probability": Decimal("50"),
     "close_date": day(0), "last_modified_in_salesforce": NOW - dt.timedelta(days=60), "is_won": False,
     "custom_fields": {"Score__c": 99, "Champion__c": ""}},
    {"name": "", "stage_name": "", "amount": None, "probability": None, "close_date": None,
     "last_modified_in_salesforce": None, "is_won": False, "custom_fields": {}},
    {"name": "Gamma <b>Deal</b>", "stage_name": "Closed Won", "amount": Decimal("5000.50"), "probability": Decimal("100"),
     "close_date": day(10), "last_modified_in_salesforce": NOW + dt.timedelta(days=1), "is_won": True,
     "custom_fields": {"Region__c": "APAC", "Score__c": -3, "Signed__c": day(400).isoformat(), "Champion__c": "Grace"}},
    {"name": "Delta beta", "stage_name": "Prospecting", "amount": Decimal("0"), "probability": Decimal("0"),
     "close_date": day(400), "last_modified_in_salesforce": NOW - dt.timedelta(days=400), "is_won": False,
     "custom_fields": {"Region__c": "EMEA", "Champion__c": "ada lovelace"}},
]  # fmt: skip


@pytest.fixture
def typed_people(fields):
    """(person, opportunity, row) for each row; one live role each."""
    people = []
    for n, row in enumerate(ROWS):
        person = PersonFactory(first_name=f"P{n}")
        opportunity = OpportunityFactory(**row, expected_revenue=None)
        ContactRoleFactory(person=person, opportunity=opportunity, role="Evaluator", is_primary=n % 2 == 0)
        people.append((person, opportunity, row))
    return people


@pytest.fixture
def clock():
    return Clock(NOW, dt.UTC)
