"""Settings (currency, time zone) as every page and the API show them; the sync status page;
who may see what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from opportunities import health
from opportunities.models import SetAsideRecord, SyncCycle, SyncObjectRun, SyncState, SyncStatus
from oppsync_site.models import SubscriptionSettings, WorkerHeartbeat
from tests.factories import ActivityFactory
from tests.unit.pages.test_person_page import person_url

pytestmark = pytest.mark.django_db


def settings_url() -> str:
    return reverse("admin:oppsync_site_subscriptionsettings_change", args=[SubscriptionSettings.load().pk])


def test_a_currency_and_time_zone_change_shows_on_the_pages_and_in_the_api(
    client, administrator, viewer, person_with_opportunities
):
    data = person_with_opportunities
    moment = dt.datetime(2026, 7, 1, 22, 30, tzinfo=dt.UTC)
    ActivityFactory(person=data.person, opportunity=data.alpha, occurred_at=moment)
    client.force_login(administrator)
    response = client.post(settings_url(), {"default_currency": "EUR", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302

    client.force_login(viewer)
    tab = client.get(person_url(data.person, tab="opportunities")).content.decode()
    assert (
        "€6,000.00" in tab and "$" not in tab.split('id="opportunity-totals-cards"')[1].split("</table>")[0]
    )
    log = client.get(person_url(data.person, tab="activity")).content.decode()
    assert "2026-07-02 07:30:00 JST" in log  # 22:30 UTC is 07:30 the next day in Tokyo
    assert "EUR · Asia/Tokyo" in log

    api = APIClient()
    api.force_authenticate(viewer)
    body = api.get("/api/v1/settings/").json()
    assert body["default_currency"] == "EUR" and body["time_zone"] == "Asia/Tokyo"
    activity = api.get("/api/v1/activities/", {"person": data.person.pk}).json()["results"][0]
    assert activity["occurred_at"].startswith("2026-07-02T07:30:00") and activity["occurred_at"].endswith(
        "+09:00"
    )
    opportunity = api.get(f"/api/v1/opportunities/{data.alpha.pk}/").json()
    assert opportunity["currency"] == "EUR"


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("default_currency", "XYZ", "is not an ISO 4217 currency code"),
        ("time_zone", "Mars/Olympus", "is not an IANA time zone"),
    ],
)
def test_bad_settings_are_refused_with_a_message_and_change_nothing(
    client, administrator, field, bad, message
):
    client.force_login(administrator)
    values = {"default_currency": "EUR", "time_zone": "Europe/Amsterdam", field: bad}
    response = client.post(settings_url(), values)
    assert response.status_code == 200
    assert message in response.content.decode()
    settings = SubscriptionSettings.load()
    assert (settings.default_currency, settings.time_zone) == ("USD", "UTC")

    api = APIClient()
    api.force_authenticate(administrator)
    response = api.patch("/api/v1/settings/", {field: bad}, format="json")
    assert response.status_code == 400
    assert field in response.json() and message in response.json()[field][0]
    settings = SubscriptionSettings.load()
    assert (settings.default_currency, settings.time_zone) == ("USD", "UTC")


def test_the_settings_page_offers_currencies_with_names_and_symbols_and_iana_zones(client, administrator):
    client.force_login(administrator)
    html = client.get(settings_url()).content.decode()
    assert '<option value="EUR">EUR — Euro (€)</option>' in html
    assert '<option value="Europe/Amsterdam">Europe/Amsterdam</option>' in html
    assert '<option value="America/New_York">America/New York</option>' in html


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_only_administrators_see_settings_and_sync_status(client, request, role, administrator):
    user = request.getfixturevalue(role)
    client.force_login(user)
    assert client.get(settings_url()).status_code == 403
    assert client.get(reverse("admin:sync_status")).status_code == 403
    assert client.get(reverse("admin:sync_status_panel")).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert "Sync status" not in index and "Settings" not in index
    assert "People" in index and "Opportunities" in index and "Activities" in index

    client.force_login(administrator)
    assert client.get(settings_url()).status_code == 200
    assert client.get(reverse("admin:sync_status")).status_code == 200
    index = client.get(reverse("admin:index")).content.decode()
    assert index.index("People") < index.index("Administration") < index.index("Sync status")


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(reverse("admin:sync_status"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def _cycle(started: dt.datetime, status: str = SyncStatus.SUCCEEDED, **fields) -> SyncCycle:
    return SyncCycle.objects.create(
        started_at=started, ended_at=started + dt.timedelta(seconds=1), status=status, **fields
    )


def test_sync_status_shows_objects_usage_heartbeat_errors_and_charts(client, administrator, settings):
    settings.SALESFORCE_CLIENT_ID = "configured"
    now = timezone.now()
    SyncState.objects.create(sobject="Opportunity", watermark=now - dt.timedelta(seconds=3))
    failed = _cycle(
        now - dt.timedelta(minutes=5),
        SyncStatus.FAILED,
        error_message="Salesforce could not be reached: connection refused",
    )
    latest = _cycle(now - dt.timedelta(seconds=5), api_calls=3, api_usage_used=42_000, api_usage_max=100_000)
    SyncObjectRun.objects.create(
        cycle=latest,
        sobject="Opportunity",
        started_at=latest.started_at,
        ended_at=latest.ended_at,
        status=SyncStatus.SUCCEEDED,
        created_count=7,
        updated_count=11,
        deleted_count=2,
        skipped_count=5,
        failed_count=0,
        expected_count=25,
    )
    WorkerHeartbeat.objects.create(hostname="worker-1", last_beat_at=now - dt.timedelta(minutes=10), beats=3)
    ActivityFactory(occurred_at=now - dt.timedelta(seconds=4))
    client.force_login(administrator)
    html = client.get(reverse("admin:sync_status")).content.decode()

    row = html.split('data-sobject="Opportunity"')[1].split("</tr>")[0]
    for number in (">7<", ">11<", ">2<", ">5<", ">0<"):
        assert number in row
    assert "42,000 / 100,000" in html and "42.0% of the org" in html
    assert "25,000" in html  # the sync's budget: 25 % of the daily limit
    assert "No worker heartbeat for 10 minutes" in html
    assert "Salesforce could not be reached" in html and "resolved: later cycles succeeded" in html
    assert str(failed.started_at.year) in html
    assert html.count('<svg viewBox="0 0 480 150"') == 3 and "<polyline" in html
    assert 'hx-trigger="every 5s"' in html
    assert "sync now" not in html.lower().replace('there is no "sync now"', "")


def test_sync_status_shows_a_first_load_in_progress_and_the_backlog(client, administrator):
    now = timezone.now()
    cycle = SyncCycle.objects.create(started_at=now - dt.timedelta(seconds=100), is_initial_load=True)
    SyncObjectRun.objects.create(
        cycle=cycle,
        sobject="Contact",
        started_at=now - dt.timedelta(seconds=100),
        created_count=4000,
        expected_count=10000,
        is_initial_load=True,
    )
    # Lead reads its window live in the same cycle (its first load was done long ago): it is no
    # first load's progress ("initial" is per object).
    SyncObjectRun.objects.create(
        cycle=cycle,
        sobject="Lead",
        started_at=now - dt.timedelta(seconds=100),
        created_count=3,
        expected_count=7,
    )
    client.force_login(administrator)
    html = client.get(reverse("admin:sync_status_panel")).content.decode()
    assert "<html" not in html  # the panel alone, for the self-refresh
    progress = html.split('id="first-load-progress"')[1].split("</div>\n</div>")[0]
    assert "4,000 of 10,000" in progress and "records/s" in progress and "left" in progress
    assert "<h3>Lead</h3>" not in progress and "3 of 7" not in progress
    row = html.split('data-sobject="Contact"')[1].split("</tr>")[0]
    assert ">6000<" in row  # backlog: what Salesforce reported and was not applied yet


def _set_aside(sobject: str, sf_id: str, reason: str, attempts: int = 1) -> SetAsideRecord:
    now = timezone.now()
    return SetAsideRecord.objects.create(
        sobject=sobject,
        sf_id=sf_id,
        reason=reason,
        first_failed_at=now - dt.timedelta(minutes=attempts),
        last_tried_at=now,
        attempts=attempts,
        retry_after=now + dt.timedelta(minutes=2**attempts),
    )


def test_sync_status_lists_records_set_aside_escaped_and_says_none_when_there_are_none(
    client, administrator, monkeypatch
):
    client.force_login(administrator)
    panel = reverse("admin:sync_status_panel")
    empty = client.get(panel).content.decode()
    assert "Records set aside" in empty and 'id="set-aside-none"' in empty

    _set_aside("Opportunity", "006000000000001AAA", "1E+21 does not fit Opportunity.amount", attempts=3)
    _set_aside("Lead", "00Q000000000002AAA", "IntegrityError: <b>x</b> " + "duplicate key " * 40)
    page = client.get(reverse("admin:sync_status")).content.decode()
    rows = page.split('id="set-aside-records"')[1].split("</table>")[0]
    assert 'data-set-aside="Opportunity:006000000000001AAA"' in rows
    assert 'data-set-aside="Lead:00Q000000000002AAA"' in rows
    assert "1E+21 does not fit Opportunity.amount" in rows and ">3<" in rows
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in rows
    assert 'id="set-aside-none"' not in page

    api = APIClient()
    api.force_authenticate(administrator)
    body = api.get("/api/v1/sync/status/").json()
    assert body["set_aside_count"] == 2
    assert {(r["sobject"], r["sf_id"]) for r in body["set_aside"]} == {
        ("Opportunity", "006000000000001AAA"),
        ("Lead", "00Q000000000002AAA"),
    }
    assert all(
        {"reason", "attempts", "first_failed_at", "last_tried_at", "retry_after"} <= r.keys()
        for r in body["set_aside"]
    )

    monkeypatch.setattr(health, "SET_ASIDE_SHOWN", 1)  # more than the page lists: all counted
    page = client.get(panel).content.decode()
    assert "2 records could not be stored" in page and "The 1 waiting longest are shown" in page
