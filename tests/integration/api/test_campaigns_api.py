"""/api/v1/campaigns/ and deliveries (contract §3): shapes, roles, a write-only secret, errors
that name their place, resend with the same key, and query counts that do not grow."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign, Delivery, DeliveryAttempt, DeliveryStatus
from opportunities.models import Activity

pytestmark = pytest.mark.integration
HOOK = "http://127.0.0.1:9/hooks"


def _body(**overrides):
    return {
        "name": "Won deals to the CRM bot",
        "triggers": [
            {
                "trigger": "opportunity_updated",
                "field": "StageName",
                "constraints": [
                    {"field": "new_value", "operator": "is", "value": ["Closed Won"]},
                    {"field": "Region__c", "operator": "is", "value": ["EMEA"]},
                ],
            },
            {
                "trigger": "added_to_opportunity",
                "constraints": [{"field": "IsPrimary", "operator": "is_true"}],
            },
        ],
        "smart_list": {"filters": [{"filter": "number_of_optys", "operator": "at_least", "value": 1}]},
        "qualification": {"once_every_days": 7},
        "webhook": {"url": HOOK, "headers": {"X-Team": "growth"}},
        **overrides,
    }


def test_a_campaign_is_created_read_changed_and_deleted_and_its_secret_is_shown_once(api):
    client = api("marketer")
    created = client.post("/api/v1/campaigns/", _body(), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    secret = body["webhook"]["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert body["qualification"] == {"once_every_days": 7} and body["is_active"] is True
    assert body["webhook"]["secret_hint"] == secret[:4] + "…"
    read = client.get(f"/api/v1/campaigns/{body['id']}/").json()
    assert "secret" not in read["webhook"] and secret not in str(read)
    assert read["deliveries"] == {"pending": 0, "succeeded": 0, "failed": 0}
    patched = client.patch(
        f"/api/v1/campaigns/{body['id']}/", {"is_active": False, "qualification": "once"}, format="json"
    ).json()
    assert patched["is_active"] is False and patched["qualification"] == "once"
    given = client.patch(
        f"/api/v1/campaigns/{body['id']}/",
        {"webhook": {"secret": "a-secret-of-my-own-choosing"}},
        format="json",
    ).json()
    assert "secret" not in given["webhook"] and given["webhook"]["url"] == HOOK
    assert Campaign.objects.get(pk=body["id"]).webhook_secret == "a-secret-of-my-own-choosing"
    assert client.get("/api/v1/campaigns/").json()["results"][0]["id"] == body["id"]
    assert client.delete(f"/api/v1/campaigns/{body['id']}/").status_code == 204


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"triggers": [{"trigger": "became_customer"}]}, "triggers[0].trigger"),
        (
            {
                "triggers": [
                    {
                        "trigger": "added_to_opportunity",
                        "constraints": [{"field": "Amount", "operator": "contains", "value": 5}],
                    }
                ]
            },
            "triggers[0].constraints[0].operator",
        ),
        (
            {
                "triggers": [
                    {
                        "trigger": "added_to_opportunity",
                        "constraints": [{"field": "Nope__c", "operator": "is", "value": "x"}],
                    }
                ]
            },
            "triggers[0].constraints[0].field",
        ),
        (
            {
                "triggers": [
                    {
                        "trigger": "added_to_opportunity",
                        "constraints": [
                            {"field": "date_of_activity", "operator": "in_past", "value": "3 days"}
                        ],
                    }
                ]
            },
            "triggers[0].constraints[0].field",
        ),
        ({"triggers": [{"trigger": "opportunity_updated", "field": "NoSuchField"}]}, "triggers[0].field"),
        ({"triggers": [{"trigger": "opportunity_updated", "field": "Secret__c"}]}, "triggers[0].field"),
        ({"triggers": []}, "triggers"),
        (
            {
                "smart_list": {
                    "logic": "1 and or 2",
                    "filters": [{"filter": "number_of_optys", "operator": "at_least", "value": 1}],
                }
            },
            "smart_list.logic",
        ),
        ({"qualification": {"once_every_days": 0}}, "qualification"),
        ({"qualification": "sometimes"}, "qualification"),
        ({"webhook": {"url": "http://169.254.169.254/latest/meta-data/"}}, "webhook.url"),
        (
            {"webhook": {"url": HOOK, "headers": {"OppSync-Signature": "forged"}}},
            "webhook.headers.OppSync-Signature",
        ),
        ({"webhook": {"url": HOOK, "secret": "short"}}, "webhook.secret"),
        ({"is_active": "yes"}, "is_active"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_campaigns_get_400_naming_the_place(api, change, where):
    response = api("marketer").post("/api/v1/campaigns/", _body(**change), format="json")
    assert response.status_code == 400, response.content
    assert where in response.json(), response.json()
    assert not Campaign.objects.exists()


def test_viewers_read_campaigns_and_deliveries_but_cannot_write(api):
    campaign_id = api("administrator").post("/api/v1/campaigns/", _body(), format="json").json()["id"]
    viewer = api("viewer")
    assert viewer.get("/api/v1/campaigns/").status_code == 200
    assert viewer.get(f"/api/v1/campaigns/{campaign_id}/deliveries/").status_code == 200
    assert viewer.post("/api/v1/campaigns/", _body(), format="json").status_code == 403
    assert viewer.patch(f"/api/v1/campaigns/{campaign_id}/", {"name": "x"}, format="json").status_code == 403
    assert viewer.post(f"/api/v1/campaigns/{campaign_id}/test-delivery/").status_code == 403
    assert api("nobody").get("/api/v1/campaigns/").status_code == 403
    assert api(None).get("/api/v1/campaigns/").status_code in (401, 403)


def _deliveries(campaign: Campaign, count: int, skip: int = 0) -> list[Delivery]:
    activities = list(Activity.objects.filter(person__isnull=False).order_by("pk")[skip : skip + count])
    made = []
    for n, activity in enumerate(activities):
        status = [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.PENDING][n % 3]
        delivery = Delivery.objects.create(
            campaign=campaign, activity=activity, person=activity.person, payload={"n": n}, status=status
        )
        for code in (500, 200 if status == DeliveryStatus.SUCCEEDED else 503):
            DeliveryAttempt.objects.create(delivery=delivery, at=delivery.created_at, status_code=code, ms=12)
        made.append(delivery)
    return made


def test_deliveries_filter_by_status_and_a_failed_one_is_resent_with_the_same_key(api):
    client = api("marketer")
    campaign = Campaign.objects.get(pk=client.post("/api/v1/campaigns/", _body(), format="json").json()["id"])
    made = _deliveries(campaign, 9)
    url = f"/api/v1/campaigns/{campaign.pk}/deliveries/"
    everything = client.get(url).json()["results"]
    assert len(everything) == 9 and {"idempotency_key", "activity", "person", "status", "attempts"} <= set(
        everything[0]
    )
    assert everything[0]["attempts"][0]["status_code"] in (500, 200, 503)
    failed = client.get(url, {"status": "failed"}).json()["results"]
    assert len(failed) == 3 and {d["status"] for d in failed} == {"failed"}
    assert client.get(url, {"status": "lost"}).status_code == 400
    one = next(d for d in made if d.status == DeliveryStatus.FAILED)
    resent = client.post(f"{url}{one.pk}/resend/")
    assert resent.status_code == 202
    assert (
        resent.json()["idempotency_key"] == str(one.idempotency_key) and resent.json()["status"] == "pending"
    )
    pending = next(d for d in made if d.status == DeliveryStatus.PENDING)
    assert client.post(f"{url}{pending.pk}/resend/").status_code == 400
    assert client.get("/api/v1/campaigns/999999/deliveries/").status_code == 404
    counts = client.get(f"/api/v1/campaigns/{campaign.pk}/").json()["deliveries"]
    assert counts == {"pending": 4, "succeeded": 3, "failed": 2}


def test_a_test_delivery_is_queued_with_a_sample_body(api):
    client = api("marketer")
    campaign_id = client.post("/api/v1/campaigns/", _body(), format="json").json()["id"]
    response = client.post(f"/api/v1/campaigns/{campaign_id}/test-delivery/")
    assert response.status_code == 202 and response.json()["is_test"] is True
    delivery = Delivery.objects.get(pk=response.json()["id"])
    assert delivery.payload["test"] is True and delivery.payload["person"]["id"]
    assert delivery.payload["id"] == str(delivery.idempotency_key)


def test_listing_deliveries_uses_a_fixed_number_of_queries(api):
    client = api("administrator")
    campaign = Campaign.objects.get(pk=client.post("/api/v1/campaigns/", _body(), format="json").json()["id"])
    url = f"/api/v1/campaigns/{campaign.pk}/deliveries/"
    _deliveries(campaign, 3)
    client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(url, {"page_size": 200}).status_code == 200
        return len(context)

    few = queries()
    _deliveries(campaign, 60, skip=3)
    assert queries() == few
    with CaptureQueriesContext(connection) as context:
        client.get("/api/v1/campaigns/", {"page_size": 200})
    listed = len(context)
    for n in range(5):
        client.post("/api/v1/campaigns/", _body(name=f"More {n}"), format="json")
    with CaptureQueriesContext(connection) as context:
        client.get("/api/v1/campaigns/", {"page_size": 200})
    assert len(context) == listed
