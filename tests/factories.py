"""factory_boy factories for the synced models."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from opportunities.models import Activity, ActivityType, ContactRole, FieldDefinition, Opportunity
from people.models import Person


def _sf_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:015d}"[:18]


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    sf_contact_id = factory.Sequence(lambda n: _sf_id("003", n))
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Faker("email")
    company = factory.Faker("company")


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    sf_id = factory.Sequence(lambda n: _sf_id("006", n))
    name = factory.Sequence(lambda n: f"Deal {n}")
    stage_name = "Prospecting"
    amount = Decimal("1000.00")
    probability = Decimal("10")
    expected_revenue = Decimal("100.00")
    close_date = factory.LazyFunction(lambda: dt.date.today() + dt.timedelta(days=30))
    system_modstamp = factory.LazyFunction(timezone.now)


class ContactRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactRole

    sf_id = factory.Sequence(lambda n: _sf_id("00K", n))
    opportunity = factory.SubFactory(OpportunityFactory)
    person = factory.SubFactory(PersonFactory)
    sf_opportunity_id = factory.LazyAttribute(lambda o: o.opportunity.sf_id)
    sf_contact_id = factory.LazyAttribute(lambda o: o.person.sf_contact_id)
    role = "Decision Maker"


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    person = factory.SubFactory(PersonFactory)
    opportunity = factory.SubFactory(OpportunityFactory)
    activity_type = ActivityType.ADDED_TO_OPPORTUNITY
    occurred_at = factory.LazyFunction(timezone.now)


def field_definition(
    sobject: str,
    api_name: str,
    label: str,
    field_type: str = "string",
    values: list[str] | None = None,
    *,
    active: bool = True,
) -> FieldDefinition:
    """A field as Salesforce describe would have shown it to the integration user."""
    now = timezone.now()
    return FieldDefinition.objects.create(
        sobject=sobject,
        api_name=api_name,
        label=label,
        field_type=field_type,
        picklist_values=values or [],
        is_custom=api_name.endswith("__c"),
        is_active=active,
        first_seen_at=now,
        last_seen_at=now,
    )
