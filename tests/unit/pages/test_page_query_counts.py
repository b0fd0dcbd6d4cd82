"""No page issues more queries as its rows grow: the person page and each tab, the opportunity
page, the lists and the sync status page cost the same with 2 rows as with 50 (and 500
activities)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from opportunities.models import SyncCycle, SyncObjectRun, SyncStatus
from tests.factories import ContactRoleFactory, OpportunityFactory, PersonFactory, field_definition
from tests.unit.pages.conftest import add_activities

pytestmark = pytest.mark.django_db


def build(opportunities: int, activities: int):
    person = PersonFactory(custom_fields={"Colour__c": "Teal"})
    opps = [OpportunityFactory() for _ in range(opportunities)]
    for n, opportunity in enumerate(opps):
        ContactRoleFactory(person=person, opportunity=opportunity, role=f"Role {n % 3}")
        ContactRoleFactory(opportunity=opportunity)  # somebody else on the same opportunity
    add_activities(person, opps[0], activities)  # type: ignore[arg-type]  # factories return models
    now = timezone.now()
    for minute in range(opportunities):
        cycle = SyncCycle.objects.create(
            started_at=now - dt.timedelta(minutes=minute), ended_at=now, status=SyncStatus.SUCCEEDED
        )
        SyncObjectRun.objects.create(
            cycle=cycle, sobject="Opportunity", started_at=cycle.started_at, created_count=3
        )
    return person, opps[0]


def pages(person, opportunity) -> list[str]:
    person_page = reverse("admin:people_person_change", args=[person.pk])
    return [
        person_page,
        f"{person_page}?tab=opportunities",
        f"{person_page}?tab=opportunities&sort=-amount",
        f"{person_page}?tab=activity",
        f"{person_page}?tab=activity&type=opportunity_updated&from=2000-01-01",
        reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]),
        reverse("admin:people_person_changelist"),
        reverse("admin:people_person_changelist") + "?q=a",
        reverse("admin:opportunities_opportunity_changelist"),
        reverse("admin:opportunities_opportunity_changelist") + "?stage_name=Prospecting&is_closed__exact=0",
        reverse("admin:opportunities_activity_changelist"),
        reverse("admin:opportunities_activity_changelist") + "?activity_type__exact=opportunity_updated",
        reverse("admin:opportunities_contactrole_changelist"),
        reverse("admin:sync_status"),
        reverse("admin:sync_status_panel"),
    ]


def count_queries(client, urls: list[str]) -> dict[str, int]:
    counts = {}
    for url in urls:
        with CaptureQueriesContext(connection) as context:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[url.split("/admin/", 1)[1].split("/", 1)[0] + " " + url.rsplit("/", 1)[-1]] = len(context)
    return counts


def test_every_page_costs_the_same_queries_for_2_and_for_50_rows(client, superuser):
    field_definition("Contact", "Colour__c", "Colour")
    field_definition("Opportunity", "StageName", "Stage", "picklist", ["Prospecting"])
    client.force_login(superuser)
    small = count_queries(client, pages(*build(opportunities=2, activities=2)))
    large = count_queries(client, pages(*build(opportunities=50, activities=500)))
    assert small == large
    # The sync status page is the costliest: it also reads the change stream and its cadence (P15).
    assert max(large.values()) <= 24, large
