"""The builder, member table and why pages in the admin: who sees what, and what they show."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from opportunities.models import FieldDefinition
from people.models import Person
from smartlists.models import SmartList
from tests.factories import ContactRoleFactory, OpportunityFactory, PersonFactory

pytestmark = pytest.mark.django_db

DEFINITION = {
    "logic": "all",
    "filters": [
        {
            "filter": "has_opportunity",
            "constraints": [{"field": "Region__c", "operator": "is", "value": ["EMEA"]}],
        }
    ],
}


@pytest.fixture
def emea_list(fields):
    for n in range(3):
        person = PersonFactory(first_name=f"Member{n}", last_name=f"Zed{n}")
        ContactRoleFactory(
            person=person,
            opportunity=OpportunityFactory(amount=Decimal(1000), custom_fields={"Region__c": "EMEA"}),
        )
    ContactRoleFactory(
        person=PersonFactory(first_name="Outsider"),
        opportunity=OpportunityFactory(custom_fields={"Region__c": "AMER"}),
    )
    return SmartList.objects.create(name="EMEA <people>", definition=DEFINITION)


def _config(html: str) -> dict:
    return json.loads(
        html.split('<script id="builder-config" type="application/json">', 1)[1].split("</script>", 1)[0]
    )


def test_the_builder_carries_the_saved_definition_and_who_may_save(client, marketer, viewer, emea_list):
    client.force_login(marketer)
    html = client.get(reverse("admin:smartlists_smartlist_change", args=[emea_list.pk])).content.decode()
    config = _config(html)
    assert config["definition"] == DEFINITION and config["canSave"] is True
    assert config["operators"]["in_past"] == {"label": "in past", "value": "relative"}
    assert "oppsync/builder.js" in html and "EMEA &lt;people&gt;" in html
    assert client.get(reverse("admin:smartlists_smartlist_add")).status_code == 200
    client.force_login(viewer)
    assert (
        _config(
            client.get(reverse("admin:smartlists_smartlist_change", args=[emea_list.pk])).content.decode()
        )["canSave"]
        is False
    )
    assert client.get(reverse("admin:smartlists_smartlist_add")).status_code == 403


def test_the_member_table_pages_sorts_and_links_why(client, viewer, emea_list):
    client.force_login(viewer)
    url = reverse("admin:smartlists_smartlist_members", args=[emea_list.pk])
    html = client.get(url, {"sort": "-last_name"}).content.decode()
    assert "3 members" in html and "Outsider" not in html
    assert html.index("Zed2") < html.index("Zed0")
    assert f"/api/v1/smart-lists/{emea_list.pk}/members.csv?fields=" in html
    member = Person.objects.get(first_name="Member2")
    assert reverse("admin:smartlists_smartlist_why", args=[emea_list.pk, member.pk]) in html


def test_member_table_queries_do_not_grow(client, viewer, emea_list):
    client.force_login(viewer)
    url = reverse("admin:smartlists_smartlist_members", args=[emea_list.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for _ in range(30):
        ContactRoleFactory(
            person=PersonFactory(), opportunity=OpportunityFactory(custom_fields={"Region__c": "EMEA"})
        )
    with CaptureQueriesContext(connection) as large:
        assert "33 members" in client.get(url).content.decode()
    assert len(small) == len(large)


def test_the_why_page_names_the_opportunity(client, viewer, emea_list):
    member = Person.objects.get(first_name="Member1")
    client.force_login(viewer)
    html = client.get(
        reverse("admin:smartlists_smartlist_why", args=[emea_list.pk, member.pk])
    ).content.decode()
    opportunity = member.contact_roles.get().opportunity
    assert (
        "is a member" in html
        and reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]) in html
    )


def test_a_list_on_a_deactivated_field_opens_with_a_warning_and_asks_first(client, viewer, emea_list):
    FieldDefinition.objects.filter(api_name="Region__c").update(is_active=False)
    client.force_login(viewer)
    url = reverse("admin:smartlists_smartlist_members", args=[emea_list.pk])
    html = client.get(url).content.decode()
    assert "Region__c" in html and "Filter 1 (Has Opportunity)" in html and 'id="members-table"' not in html
    confirmed = client.get(url, {"ignore_inactive_fields": "true"}).content.decode()
    assert "4 members" in confirmed and "left out, as you confirmed" in confirmed
    assert client.get(reverse("admin:smartlists_smartlist_change", args=[emea_list.pk])).status_code == 200
