"""Hand-built data for the page tests: one person with several opportunities through several
roles, and everything that must not show."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from opportunities.models import Activity, ActivityType, ContactRole, Opportunity
from people.models import Person
from tests.factories import (
    ActivityFactory,
    ContactRoleFactory,
    OpportunityFactory,
    PersonFactory,
    field_definition,
)


@dataclass
class PersonWithOpportunities:
    person: Person
    alpha: Opportunity
    beta: Opportunity
    gamma: Opportunity
    orphan: Opportunity
    removed: Opportunity
    deleted: Opportunity


@pytest.fixture
def person_with_opportunities(db) -> PersonWithOpportunities:
    field_definition("Opportunity", "StageName", "Stage", "picklist", ["Prospecting", "Closed Won"])
    field_definition("Opportunity", "Amount", "Amount", "currency")
    field_definition("Opportunity", "Region__c", "Sales region", "picklist", ["EMEA", "AMER"])
    field_definition("Contact", "Favourite_Colour__c", "Favourite colour")
    person = PersonFactory(
        first_name="Grace",
        last_name="Hopper",
        email="grace@example.com",
        company="Navy",
        sf_lead_id="00Q000000000000001",
        custom_fields={"Favourite_Colour__c": "Teal"},
    )
    alpha = OpportunityFactory(
        name="Alpha deal",
        amount=Decimal("1000.00"),
        expected_revenue=Decimal("100.00"),
        custom_fields={"Region__c": "EMEA"},
    )
    beta = OpportunityFactory(
        name="Beta deal", amount=Decimal("5000.00"), expected_revenue=Decimal("2500.00")
    )
    gamma = OpportunityFactory(name="Gamma deal", amount=None, expected_revenue=None, stage_name="Closed Won")
    orphan = OpportunityFactory(name="Orphan deal", amount=Decimal("999999.00"))
    removed = OpportunityFactory(name="Removed deal", amount=Decimal("7777.00"))
    deleted = OpportunityFactory(name="Deleted deal", amount=Decimal("8888.00"), is_deleted=True)
    ContactRoleFactory(person=person, opportunity=alpha, role="Decision Maker", is_primary=True)
    ContactRoleFactory(person=person, opportunity=beta, role="Economic Buyer")
    ContactRoleFactory(person=person, opportunity=beta, role="Evaluator")  # a second role: counted once
    ContactRoleFactory(person=person, opportunity=gamma, role="Influencer")
    ContactRoleFactory(person=person, opportunity=removed, role="Technical Buyer", is_deleted=True)
    ContactRoleFactory(person=person, opportunity=deleted, role="Champion")
    # The role-less opportunity's only role belongs to somebody else.
    ContactRoleFactory(opportunity=orphan, role="Someone else's")
    return PersonWithOpportunities(person, alpha, beta, gamma, orphan, removed, deleted)  # type: ignore[arg-type]  # factories return models


def add_activities(person: Person, opportunity: Opportunity, count: int) -> None:
    start = timezone.now() - dt.timedelta(days=10)
    Activity.objects.bulk_create(
        Activity(
            person=person,
            opportunity=opportunity,
            activity_type=ActivityType.OPPORTUNITY_UPDATED,
            occurred_at=start + dt.timedelta(minutes=n),
            field="StageName",
            previous_value="Prospecting",
            new_value=f"Stage {n}",
        )
        for n in range(count)
    )


__all__ = ["ActivityFactory", "ContactRole", "add_activities", "field_definition"]
