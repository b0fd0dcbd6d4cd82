"""The trigger-campaign pages: the list, the editor, the deliveries with their status filter,
test delivery and resend (POST only, for people who may change campaigns), empty states,
escaped names and a fixed number of queries."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Campaign, Delivery, DeliveryAttempt, DeliveryStatus
from tests.factories import ActivityFactory, ContactRoleFactory, OpportunityFactory, PersonFactory

pytestmark = pytest.mark.django_db
XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
def campaign(settings) -> Campaign:
    return Campaign.objects.create(
        name=f"{XSS} Won deals",
        triggers=[
            {
                "trigger": "added_to_opportunity",
                "constraints": [{"field": "IsPrimary", "operator": "is_true"}],
            }
        ],
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="whsec_page_test_secret_value",
    )


def _deliveries(campaign, count):
    for n in range(count):
        person = PersonFactory(first_name=f"P{n}", last_name=XSS if n == 0 else "Lee")
        opportunity = OpportunityFactory(name=f"{XSS} deal {n}")
        ContactRoleFactory(person=person, opportunity=opportunity)
        activity = ActivityFactory(person=person, opportunity=opportunity)
        status = [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.PENDING][n % 3]
        delivery = Delivery.objects.create(
            campaign=campaign,
            activity=activity,
            person=person,
            payload={"id": "x"},
            status=status,
            attempt_count=2,
        )
        for code, error in (
            (500, "HTTP 500"),
            (200 if status == DeliveryStatus.SUCCEEDED else None, "could not connect: Connection refused"),
        ):
            DeliveryAttempt.objects.create(
                delivery=delivery,
                at=delivery.created_at,
                status_code=code,
                ms=7,
                error=error if code != 200 else "",
            )


def test_the_campaign_list_shows_triggers_counts_and_escapes_names(client, marketer, campaign):
    _deliveries(campaign, 6)
    client.force_login(marketer)
    page = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert XSS not in page and "&lt;img src=x" in page
    assert "Added to Opportunity + 1 constraint" in page
    assert "2 sent" in page and "2 failed" in page and "2 pending" in page


def test_the_editor_carries_the_campaign_and_never_its_secret(client, marketer, campaign):
    client.force_login(marketer)
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "whsec_page_test_secret_value" not in page and "whse…" in page
    assert '"mode": "campaign"' in page and XSS not in page
    assert client.get(reverse("admin:campaigns_campaign_add")).status_code == 200


def test_deliveries_filter_by_status_show_attempts_and_an_empty_state(client, marketer, campaign):
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_deliveries", args=[campaign.pk])
    empty = client.get(url).content.decode()
    assert "No deliveries yet" in empty and "send a test delivery" in empty
    _deliveries(campaign, 6)
    page = client.get(url).content.decode()
    assert page.count('data-delivery="') == 6 and XSS not in page
    assert "could not connect: Connection refused" in page and "all 2" in page
    failed = client.get(url, {"status": "failed"}).content.decode()
    rows = re.findall(r'data-delivery="\d+" data-status="(\w+)"', failed)
    assert rows == ["failed", "failed"]
    assert "No succeeded deliveries." not in client.get(url, {"status": "succeeded"}).content.decode()
    Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).delete()
    assert "No succeeded deliveries." in client.get(url, {"status": "succeeded"}).content.decode()


def test_resend_and_test_delivery_are_posts_for_editors_only(client, marketer, viewer, campaign):
    _deliveries(campaign, 3)
    failed = Delivery.objects.get(status=DeliveryStatus.FAILED)
    resend = reverse("admin:campaigns_campaign_resend", args=[campaign.pk, failed.pk])
    test = reverse("admin:campaigns_campaign_test_delivery", args=[campaign.pk])
    client.force_login(viewer)
    assert client.get(reverse("admin:campaigns_campaign_deliveries", args=[campaign.pk])).status_code == 200
    assert (
        "Resend"
        not in client.get(reverse("admin:campaigns_campaign_deliveries", args=[campaign.pk])).content.decode()
    )
    assert client.post(resend).status_code == 403 and client.post(test).status_code == 403
    client.force_login(marketer)
    assert client.get(resend).status_code == 403  # a GET never sends anything
    assert client.post(resend).status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempt_count) == (DeliveryStatus.PENDING, 0)
    assert client.post(test).status_code == 302
    assert Delivery.objects.filter(campaign=campaign, is_test=True).count() == 1


def test_the_deliveries_page_uses_a_fixed_number_of_queries(client, marketer, campaign):
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_deliveries", args=[campaign.pk])
    _deliveries(campaign, 3)
    client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(url).status_code == 200
        return len(context)

    few = queries()
    _deliveries(campaign, 30)
    assert queries() == few
