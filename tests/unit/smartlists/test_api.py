"""/api/v1/filters/ and /api/v1/smart-lists/: catalog, CRUD by role, members, preview, CSV, why,
and bad input as a 400 that says where the problem is."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from opportunities.models import FieldDefinition
from smartlists.models import SmartList
from tests.factories import ContactRoleFactory, OpportunityFactory, PersonFactory
from tests.unit.smartlists.conftest import define

pytestmark = pytest.mark.django_db

EMEA = {
    "name": "Open EMEA deals over 5k",
    "logic": "all",
    "filters": [
        {
            "filter": "has_opportunity",
            "constraints": [
                {"field": "IsClosed", "operator": "is_false"},
                {"field": "Amount", "operator": "at_least", "value": 5000},
                {"field": "Region__c", "operator": "is", "value": ["EMEA"]},
            ],
        }
    ],
}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def emea_people(fields):
    people = []
    for n in range(7):
        person = PersonFactory(first_name=f"Emea{n}", last_name=f"Zed{n:02d}", email=f"emea{n}@example.com")
        ContactRoleFactory(
            person=person,
            opportunity=OpportunityFactory(amount=Decimal(6000 + n), custom_fields={"Region__c": "EMEA"}),
        )
        people.append(person)
    other = PersonFactory(first_name="Amer")
    ContactRoleFactory(
        person=other,
        opportunity=OpportunityFactory(amount=Decimal(9000), custom_fields={"Region__c": "AMER"}),
    )
    formula = PersonFactory(first_name='=HYPERLINK("x")', email="formula@example.com")
    ContactRoleFactory(
        person=formula,
        opportunity=OpportunityFactory(amount=Decimal(7000), custom_fields={"Region__c": "EMEA"}),
    )
    return [*people, formula]


def test_the_catalog_lists_every_filter_with_typed_constraints_including_custom_fields(viewer, fields):
    body = client_for(viewer).get("/api/v1/filters/").json()
    by_key = {entry["filter"]: entry for entry in body}
    assert set(by_key) >= {
        "has_opportunity", "opportunity_was_updated", "not_opportunity_was_updated", "was_added_to_opportunity",
        "not_was_added_to_opportunity", "was_removed_from_opportunity", "not_was_removed_from_opportunity",
        "total_opty_amount", "number_of_optys", "total_opty_expected_revenue", "person_field", "member_of_smart_list",
    }  # fmt: skip
    constraints = {c["field"]: c for c in by_key["has_opportunity"]["constraints"]}
    assert constraints["Region__c"] == {
        "field": "Region__c", "label": "Region", "type": "picklist", "operators": ["is", "is_not", "is_empty", "is_not_empty"],
        "values": ["EMEA", "AMER", "APAC"],
    }  # fmt: skip
    assert constraints["Amount"]["type"] == "currency" and "between" in constraints["Amount"]["operators"]
    assert (
        constraints["CloseDate"]["type"] == "date"
        and "in_time_frame" in constraints["CloseDate"]["operators"]
    )
    assert {"Role", "IsPrimary"} <= set(constraints)
    assert "Legacy__c" not in constraints  # inactive
    added = {c["field"] for c in by_key["was_added_to_opportunity"]["constraints"]}
    assert {"date_of_activity", "min_number_of_times", "Role", "IsPrimary", "Region__c"} <= added
    assert (
        by_key["total_opty_amount"]["operators"] and by_key["total_opty_amount"]["value_type"] == "currency"
    )
    assert {f["field"] for f in by_key["person_field"]["fields"]} >= {"email", "company", "Persona__c"}
    for entry in body:
        for constraint in entry["constraints"]:
            assert constraint["type"] in (
                "text",
                "picklist",
                "number",
                "currency",
                "percent",
                "date",
                "datetime",
                "boolean",
            )
    define("Opportunity", "Tier__c", "Tier", "picklist", ["Gold"])  # describe saw a new field
    again = {e["filter"]: e for e in client_for(viewer).get("/api/v1/filters/").json()}
    assert "Tier__c" in {c["field"] for c in again["has_opportunity"]["constraints"]}


def test_marketers_write_viewers_read(marketer, viewer, administrator, emea_people):
    created = client_for(marketer).post("/api/v1/smart-lists/", EMEA, format="json")
    assert created.status_code == 201, created.json()
    list_id = created.json()["id"]
    assert created.json()["filters"] == EMEA["filters"] and created.json()["logic"] == "all"
    assert client_for(viewer).get(f"/api/v1/smart-lists/{list_id}/").status_code == 200
    assert client_for(viewer).post("/api/v1/smart-lists/", EMEA, format="json").status_code == 403
    assert (
        client_for(viewer).patch(f"/api/v1/smart-lists/{list_id}/", {"name": "x"}, format="json").status_code
        == 403
    )
    assert client_for(viewer).delete(f"/api/v1/smart-lists/{list_id}/").status_code == 403
    renamed = client_for(administrator).patch(
        f"/api/v1/smart-lists/{list_id}/", {"name": "Renamed"}, format="json"
    )
    assert (
        renamed.status_code == 200
        and renamed.json()["name"] == "Renamed"
        and renamed.json()["filters"] == EMEA["filters"]
    )
    assert client_for(marketer).delete(f"/api/v1/smart-lists/{list_id}/").status_code == 204


def test_members_count_page_and_sort(viewer, emea_people):
    smart_list = SmartList.objects.create(
        name="EMEA", definition={"logic": EMEA["logic"], "filters": EMEA["filters"]}
    )
    client = client_for(viewer)
    body = client.get(
        f"/api/v1/smart-lists/{smart_list.pk}/members/", {"page_size": 3, "ordering": "-last_name"}
    ).json()
    assert body["count"] == 8 and len(body["results"]) == 3
    assert [p["last_name"] for p in body["results"]] == sorted(
        (p.last_name for p in emea_people), reverse=True
    )[:3]
    preview = client.post(
        "/api/v1/smart-lists/preview/", {"logic": "all", "filters": EMEA["filters"]}, format="json"
    )
    assert preview.status_code == 200 and preview.json()["count"] == 8


def test_member_queries_do_not_grow_with_the_list_or_the_page(viewer, emea_people):
    smart_list = SmartList.objects.create(
        name="EMEA", definition={"logic": EMEA["logic"], "filters": EMEA["filters"]}
    )
    client = client_for(viewer)
    url = f"/api/v1/smart-lists/{smart_list.pk}/members/"
    client.get(url)  # warm the throttle's cache entry
    counts = []
    for size in (2, 8):
        with CaptureQueriesContext(connection) as context:
            assert client.get(url, {"page_size": size}).status_code == 200
        counts.append(len(context))
    for _n in range(20):
        person = PersonFactory()
        ContactRoleFactory(
            person=person,
            opportunity=OpportunityFactory(amount=Decimal(8000), custom_fields={"Region__c": "EMEA"}),
        )
    with CaptureQueriesContext(connection) as context:
        assert client.get(url, {"page_size": 25}).json()["count"] == 28
    counts.append(len(context))
    assert len(set(counts)) == 1 and counts[0] <= 24, counts


def test_csv_streams_the_chosen_fields_of_every_member(viewer, emea_people):
    smart_list = SmartList.objects.create(
        name="EMEA", definition={"logic": EMEA["logic"], "filters": EMEA["filters"]}
    )
    response = client_for(viewer).get(
        f"/api/v1/smart-lists/{smart_list.pk}/members.csv", {"fields": "email,first_name"}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["email", "first_name"] and len(rows) == 9
    assert ["formula@example.com", '\'=HYPERLINK("x")'] in rows  # never a live formula in a spreadsheet
    bad = client_for(viewer).get(
        f"/api/v1/smart-lists/{smart_list.pk}/members.csv", {"fields": "email,password"}
    )
    assert bad.status_code == 400 and "password" in bad.json()["fields"][0]


def test_why_names_the_opportunity_that_satisfied_each_filter(viewer, emea_people, fields):
    person = emea_people[0]
    definition = {
        "logic": "1 and (2 or 3)",
        "filters": [
            EMEA["filters"][0],
            {"filter": "total_opty_amount", "operator": "greater_than", "value": 100000},
            {"filter": "person_field", "field": "first_name", "operator": "starts_with", "value": "Emea"},
        ],
    }
    smart_list = SmartList.objects.create(name="Why", definition=definition)
    body = client_for(viewer).get(f"/api/v1/smart-lists/{smart_list.pk}/members/{person.pk}/why/").json()
    assert body["is_member"] is True
    first, second, third = body["filters"]
    opportunity = person.contact_roles.get().opportunity
    assert (
        first["matched"]
        and first["opportunity"]["id"] == opportunity.pk
        and first["opportunity"]["name"] == opportunity.name
    )
    assert second["matched"] is False and second["value"] == "6000.00"
    assert third["matched"] and third["value"] == "Emea0"
    outsider = PersonFactory()
    assert (
        client_for(viewer)
        .get(f"/api/v1/smart-lists/{smart_list.pk}/members/{outsider.pk}/why/")
        .json()["is_member"]
        is False
    )
    assert (
        client_for(viewer).get(f"/api/v1/smart-lists/{smart_list.pk}/members/999999/why/").status_code == 404
    )


def test_a_deactivated_field_warns_and_needs_consent(viewer, emea_people):
    smart_list = SmartList.objects.create(
        name="EMEA", definition={"logic": EMEA["logic"], "filters": EMEA["filters"]}
    )
    FieldDefinition.objects.filter(sobject="Opportunity", api_name="Region__c").update(is_active=False)
    client = client_for(viewer)
    url = f"/api/v1/smart-lists/{smart_list.pk}/members/"
    refused = client.get(url)
    assert refused.status_code == 409
    assert (
        "Region__c" in refused.json()["warnings"][0]
        and "Filter 1 (Has Opportunity)" in refused.json()["warnings"][0]
    )
    assert client.get(f"/api/v1/smart-lists/{smart_list.pk}/").status_code == 200  # the list still opens
    confirmed = client.get(url, {"ignore_inactive_fields": "true"})
    assert (
        confirmed.status_code == 200 and confirmed.json()["count"] == 9
    )  # AMER counts too without the region


BAD = [
    ({"filters": [{"filter": "has_opportunities"}]}, "filters[0].filter"),
    ({"filters": [{"filter": "has_opportunity", "constraints": [{"field": "Nope__c", "operator": "is", "value": ["x"]}]}]}, "filters[0].constraints[0].field"),
    ({"filters": [{"filter": "has_opportunity"}, {"filter": "has_opportunity", "constraints": [{"field": "Amount", "operator": "bigger", "value": 1}]}]}, "filters[1].constraints[0].operator"),
    ({"filters": [{"filter": "has_opportunity", "constraints": [{"field": "Legacy__c", "operator": "is", "value": ["x"]}]}]}, "filters[0].constraints[0].field"),
    ({"filters": [{"filter": "has_opportunity", "constraints": [{"field": "Amount", "operator": "at_least", "value": "lots"}]}]}, "filters[0].constraints[0].value"),
    ({"filters": [{"filter": "has_opportunity", "constraints": [{"field": "CloseDate", "operator": "in_past", "value": "30 parsecs"}]}]}, "filters[0].constraints[0].value"),
    ({"filters": [{"filter": "has_opportunity", "constraints": [{"field": "Amount", "operator": "between", "value": [9, 1]}]}]}, "filters[0].constraints[0].value"),
    ({"logic": "1 and or 2", "filters": [{"filter": "has_opportunity"}, {"filter": "has_opportunity"}]}, "logic"),
    ({"logic": "1 and 2 or 3", "filters": [{"filter": "has_opportunity"}] * 3}, "logic"),
    ({"logic": "1 and 4", "filters": [{"filter": "has_opportunity"}] * 3}, "logic"),
    ({"filters": []}, "filters"),
    ({"filters": "has_opportunity"}, "filters"),
    ({"filters": [{"filter": "person_field", "field": "password", "operator": "is", "value": ["x"]}]}, "filters[0].field"),
    ({"filters": [{"filter": "member_of_smart_list", "value": [424242]}]}, "filters[0].value"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "where"), BAD)
def test_bad_definitions_are_a_400_naming_the_filter_and_constraint(marketer, fields, definition, where):
    client = client_for(marketer)
    for response in (
        client.post("/api/v1/smart-lists/", {"name": "Bad", **definition}, format="json"),
        client.post("/api/v1/smart-lists/preview/", definition, format="json"),
    ):
        if where.startswith("filters[0].value") and "preview" in response.request["PATH_INFO"]:
            continue  # the preview of a list naming a missing list is empty, not an error
        assert response.status_code == 400, response.content
        body = response.json()
        assert where in body, body
        assert all(isinstance(messages, list) and messages for messages in body.values())
    assert not SmartList.objects.exists()


def test_logic_errors_point_at_the_token(marketer, fields):
    body = (
        client_for(marketer)
        .post(
            "/api/v1/smart-lists/preview/",
            {"logic": "1 and or 2", "filters": [{"filter": "has_opportunity"}] * 2},
            format="json",
        )
        .json()
    )
    assert body["logic"] == ["unexpected 'or' at position 7 of the rule"]


def test_member_of_smart_list_cycles_are_refused(marketer, fields):
    client = client_for(marketer)
    first = client.post(
        "/api/v1/smart-lists/", {"name": "A", "filters": [{"filter": "has_opportunity"}]}, format="json"
    ).json()
    second = client.post(
        "/api/v1/smart-lists/",
        {"name": "B", "filters": [{"filter": "member_of_smart_list", "value": [first["id"]]}]},
        format="json",
    ).json()
    cycle = client.put(
        f"/api/v1/smart-lists/{first['id']}/",
        {"name": "A", "filters": [{"filter": "member_of_smart_list", "value": [second["id"]]}]},
        format="json",
    )
    assert cycle.status_code == 400 and "contain itself" in cycle.json()["filters[0].value"][0]
    itself = client.put(
        f"/api/v1/smart-lists/{first['id']}/",
        {"name": "A", "filters": [{"filter": "member_of_smart_list", "value": [first["id"]]}]},
        format="json",
    )
    assert itself.status_code == 400
