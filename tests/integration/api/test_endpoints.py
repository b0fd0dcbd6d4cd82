"""Every read endpoint of contract §3 against data from a real sync of the emulator."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.throttling import UserRateThrottle

from opportunities.models import Activity, ContactRole, Opportunity
from people.models import Person

pytestmark = pytest.mark.integration


def test_persons_list_filters_and_detail(api):
    client = api("marketer")
    body = client.get("/api/v1/persons/?page_size=5").json()
    assert set(body) >= {"next", "previous", "results", "count"}
    assert len(body["results"]) == 5 and body["next"] and body["previous"] is None
    person = Person.objects.exclude(email="").exclude(sf_contact_id=None).first()
    detail = client.get(f"/api/v1/persons/{person.pk}/").json()
    assert set(detail) == {
        "id",
        "sf_contact_id",
        "sf_lead_id",
        "email",
        "first_name",
        "last_name",
        "company",
        "title",
        "lead_source",
        "is_deleted_in_salesforce",
        "custom_fields",
    }
    assert "Department" not in detail["custom_fields"]  # standard fields are not custom
    by_email = client.get("/api/v1/persons/", {"email": person.email.upper()}).json()
    assert [p["id"] for p in by_email["results"]] == [person.pk]
    by_sf_id = client.get("/api/v1/persons/", {"sf_id": person.sf_contact_id}).json()
    assert [p["id"] for p in by_sf_id["results"]] == [person.pk]
    searched = client.get("/api/v1/persons/", {"search": person.last_name}).json()
    assert person.pk in [p["id"] for p in searched["results"]]


def test_a_persons_opportunities_are_the_opportunity_info_tab(api):
    role = (
        ContactRole.live.filter(person__isnull=False, opportunity__is_deleted=False)
        .select_related("person")
        .first()
    )
    body = api("viewer").get(f"/api/v1/persons/{role.person_id}/opportunities/").json()
    rows = body["results"]
    expected = ContactRole.objects.filter(
        person_id=role.person_id, is_deleted=False, opportunity__is_deleted=False
    ).count()
    assert len(rows) == expected
    assert set(rows[0]) == {"role", "is_primary", "opportunity"}
    assert {r["opportunity"]["id"] for r in rows} >= {role.opportunity_id}


def test_opportunities_money_currency_and_custom_fields(api, administrator_client=None):
    client = api("marketer")
    opportunity = Opportunity.live.exclude(amount=None).first()
    body = client.get(f"/api/v1/opportunities/{opportunity.pk}/").json()
    assert set(body) == {
        "id",
        "sf_id",
        "name",
        "account_name",
        "stage",
        "amount",
        "expected_revenue",
        "probability",
        "close_date",
        "type",
        "lead_source",
        "is_closed",
        "is_won",
        "currency",
        "custom_fields",
        "last_modified_in_salesforce",
    }
    assert body["amount"] == f"{opportunity.amount:.2f}" and isinstance(body["amount"], str)
    assert Decimal(body["expected_revenue"]) == opportunity.expected_revenue
    assert body["currency"] == "USD"
    assert body["custom_fields"] == {"Region__c": opportunity.custom_fields["Region__c"]}  # never Secret__c
    changed = api("administrator").patch("/api/v1/settings/", {"default_currency": "EUR"}, format="json")
    assert changed.status_code == 200 and changed.json() == {
        "default_currency": "EUR",
        "currency_symbol": "€",
        "time_zone": "UTC",
    }
    assert client.get(f"/api/v1/opportunities/{opportunity.pk}/").json()["currency"] == "EUR"
    assert client.get("/api/v1/settings/").json()["default_currency"] == "EUR"


def test_opportunity_filters(api):
    client = api("viewer")
    won = client.get("/api/v1/opportunities/", {"is_won": "true", "page_size": 1000}).json()["results"]
    assert won and all(o["is_won"] for o in won)
    assert len(won) == Opportunity.live.filter(is_won=True).count()
    stage = Opportunity.live.first().stage_name
    staged = client.get("/api/v1/opportunities/", {"stage": stage, "page_size": 1000}).json()["results"]
    assert {o["stage"] for o in staged} == {stage}
    without = client.get("/api/v1/opportunities/", {"has_contact_roles": "false", "page_size": 1000}).json()[
        "results"
    ]
    assert (
        without
        and not ContactRole.live.filter(
            opportunity_id__in=[o["id"] for o in without], person__isnull=False
        ).exists()
    )
    one = Opportunity.live.last()
    assert [
        o["id"] for o in client.get("/api/v1/opportunities/", {"sf_id": one.sf_id}).json()["results"]
    ] == [one.pk]


def test_contact_roles_and_activities(api):
    client = api("marketer")
    role = ContactRole.live.filter(person__isnull=False).first()
    roles = client.get("/api/v1/contact-roles/", {"opportunity": role.opportunity_id}).json()["results"]
    assert role.pk in [r["id"] for r in roles]
    assert set(roles[0]) == {"id", "sf_id", "opportunity", "person", "sf_contact_id", "role", "is_primary"}
    activities = client.get(
        "/api/v1/activities/", {"type": "added_to_opportunity", "person": role.person_id}
    ).json()["results"]
    assert activities and all(a["type"] == "added_to_opportunity" for a in activities)
    update = Activity.objects.filter(activity_type="opportunity_updated").first()
    assert update is not None, "the sales team's changes should have recorded updates"
    body = client.get(f"/api/v1/activities/{update.pk}/").json()
    assert body["field"] == update.field and body["new_value"] == update.new_value
    since = client.get(
        "/api/v1/activities/", {"since": update.occurred_at.isoformat(), "page_size": 1000}
    ).json()["results"]
    assert update.pk in [a["id"] for a in since]


def test_sync_status_for_administrators(api):
    body = api("administrator").get("/api/v1/sync/status/").json()
    assert [o["sobject"] for o in body["objects"]] == [
        "Contact",
        "Lead",
        "Opportunity",
        "OpportunityContactRole",
    ]
    assert body["objects"][2]["watermark"] and body["objects"][2]["last_run"]["status"] == "succeeded"
    assert body["cycles"][0]["status"] == "succeeded"
    assert body["api_usage"]["max"] == 100_000


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("/api/v1/activities/?type=bogus", "type"),
        ("/api/v1/activities/?since=yesterday-ish", "since"),
        ("/api/v1/opportunities/?is_closed=perhaps", "is_closed"),
        ("/api/v1/persons/?page_size=5000", "page_size"),
        ("/api/v1/contact-roles/?person=abc", "person"),
    ],
)
def test_bad_input_gives_400_that_names_the_problem(api, url, problem):
    response = api("viewer").get(url)
    assert response.status_code == 400
    assert problem in response.json()


def test_settings_reject_a_bad_currency_with_a_clear_message(api):
    response = api("administrator").patch("/api/v1/settings/", {"default_currency": "XYZ"}, format="json")
    assert response.status_code == 400
    assert "is not an ISO 4217 currency code" in response.json()["default_currency"][0]


def test_missing_objects_and_paths_are_json_404s(api):
    client = api("viewer")
    for url in ("/api/v1/persons/999999999/", "/api/v1/opportunities/999999999/", "/api/v1/nothing-here/"):
        response = client.get(url)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert "detail" in response.json()


def test_throttling_gives_429(api, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute", "anon": "3/minute"})
    from oppsync_site.models import ThrottleCounter

    ThrottleCounter.objects.all().delete()  # this window's earlier requests of the viewer
    client = api("viewer")
    statuses = [client.get("/api/v1/settings/").status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429
    ThrottleCounter.objects.all().delete()


def test_the_docs_page_is_served_without_a_cdn(client, synced_data):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/persons/",
        "/api/v1/persons/{id}/opportunities/",
        "/api/v1/settings/",
        "/api/v1/sync/status/",
    } <= set(paths)
    assert not any("sync" in path and "post" in ops for path, ops in paths.items())  # nothing starts a sync
