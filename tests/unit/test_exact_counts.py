"""Every smart-list count is exact, whatever the estimate would say; the raw lists of synced tables
that show PostgreSQL's estimate say so ("about N" in the admin, `count_is_estimate` in the API).

The threshold is lowered to 0, so every list here is "big" (the planner never expects fewer than
one row). Where the estimate comes from the
planner (PostgreSQL), the numbers are the planner's; to make the same checks bite on SQLite, which
has no estimate, some tests replace the estimate with a number no list here holds.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from campaigns.models import Campaign
from oppsync_site.pagination import EstimatedCountPaginator, about
from people.models import Person
from smartlists.evaluate import evaluate
from smartlists.models import SmartList
from tests.factories import ContactRoleFactory, OpportunityFactory, PersonFactory
from tests.unit.smartlists.conftest import fields  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db

IMPOSSIBLE = 987_654  # an "estimate" no list of these tests holds
EMEA = {
    "logic": "all",
    "filters": [
        {
            "filter": "has_opportunity",
            "constraints": [{"field": "Region__c", "operator": "is", "value": ["EMEA"]}],
        }
    ],
}
SYNCED_LISTS = ["/api/v1/persons/", "/api/v1/opportunities/", "/api/v1/contact-roles/", "/api/v1/activities/"]


@pytest.fixture
def emea(fields):  # noqa: F811
    """Seven people on EMEA deals among twelve; a saved list and a campaign of them."""
    for n in range(7):
        ContactRoleFactory(
            person=PersonFactory(first_name=f"Emea{n}", last_name="Smith"),
            opportunity=OpportunityFactory(amount=Decimal(1000 + n), custom_fields={"Region__c": "EMEA"}),
        )
    for n in range(5):
        ContactRoleFactory(
            person=PersonFactory(first_name=f"Amer{n}", last_name="Smith"),
            opportunity=OpportunityFactory(custom_fields={"Region__c": "AMER"}),
        )
    smart_list = SmartList.objects.create(name="EMEA", definition=EMEA)
    campaign = Campaign.objects.create(
        name="EMEA deals",
        triggers=[{"trigger": "added_to_opportunity"}],
        smart_list=EMEA,
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="whsec_exact_counts_secret",
    )
    return smart_list, campaign


@pytest.fixture
def threshold_one(monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "ESTIMATE_ABOVE", 0)


@pytest.fixture
def impossible_estimate(monkeypatch, threshold_one):
    """Every estimate, on either database, is IMPOSSIBLE: any count that reads it shows it."""
    monkeypatch.setattr(EstimatedCountPaginator, "estimate", lambda self: IMPOSSIBLE)


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _config(html: str) -> dict:
    return json.loads(
        html.split('<script id="builder-config" type="application/json">', 1)[1].split("</script>", 1)[0]
    )


def _smart_list_counts(client, api, smart_list, campaign) -> dict[str, tuple[int, bool]]:
    """Every number a marketer reads for the list, with whether it says it is an estimate."""
    counts = {}
    preview = api.post("/api/v1/smart-lists/preview/?page_size=2", EMEA, format="json").json()
    counts["preview API"] = (preview["count"], preview["count_is_estimate"])
    members = api.get(f"/api/v1/smart-lists/{smart_list.pk}/members/", {"page_size": 2}).json()
    counts["members API"] = (members["count"], members["count_is_estimate"])
    # The builder's live count and the campaign editor's "Match now" are the preview of the
    # definition the page carries, asked as builder.js asks it.
    for name, url, key in [
        ("builder live count", f"/admin/smartlists/smartlist/{smart_list.pk}/change/", "definition"),
        ("campaign match now", f"/admin/campaigns/campaign/{campaign.pk}/change/", "campaign"),
    ]:
        config = _config(client.get(url).content.decode())
        definition = config[key]["smart_list"] if key == "campaign" else config[key]
        body = api.post("/api/v1/smart-lists/preview/?page_size=10", definition, format="json").json()
        counts[name] = (body["count"], body["count_is_estimate"])
    page = client.get(f"/admin/smartlists/smartlist/{smart_list.pk}/members/").content.decode()
    counts["members page"] = (int(page.split('id="member-count" data-count="', 1)[1].split('"', 1)[0]), False)
    response = api.get(f"/api/v1/smart-lists/{smart_list.pk}/members.csv", {"fields": "email"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    counts["CSV rows"] = (len(rows) - 1, False)
    return counts


def test_every_smart_list_count_is_exact_whatever_the_estimate(client, marketer, emea, impossible_estimate):
    smart_list, campaign = emea
    client.force_login(marketer)
    exact = 7
    assert evaluate(EMEA).people.count() == exact
    counts = _smart_list_counts(client, _api(marketer), smart_list, campaign)
    assert counts == dict.fromkeys(counts, (exact, False))
    for url in ("/api/v1/smart-lists/", "/api/v1/campaigns/", f"/api/v1/campaigns/{campaign.pk}/deliveries/"):
        body = _api(marketer).get(url).json()
        assert body["count_is_estimate"] is False and body["count"] != IMPOSSIBLE, url


def test_the_raw_lists_that_estimate_say_so(client, marketer, emea, impossible_estimate):
    api = _api(marketer)
    for url in SYNCED_LISTS:
        body = api.get(url).json()
        assert (body["count"], body["count_is_estimate"]) == (IMPOSSIBLE, True), url
    client.force_login(marketer)
    for url in (
        "/admin/people/person/",
        "/admin/opportunities/opportunity/",
        "/admin/opportunities/activity/",
    ):
        html = client.get(url).content.decode()
        assert f'data-estimate="{IMPOSSIBLE}"' in html and "about 988,000" in html, url
    searched = client.get("/admin/people/person/", {"q": "smith"}).content.decode()
    assert searched.count("about 988,000") == 2  # beside the search box and under the list


def test_lists_counted_exactly_say_so(client, marketer, emea):
    """Above the threshold nothing is estimated (nor on SQLite at all): exact, and flagged false."""
    api = _api(marketer)
    body = api.get("/api/v1/persons/", {"search": "smith"}).json()
    assert (body["count"], body["count_is_estimate"]) == (12, False)
    client.force_login(marketer)
    html = client.get("/admin/people/person/", {"q": "smith"}).content.decode()
    assert '<span id="result-count">12</span> people' in html and "os-estimate" not in html


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite has no estimate")
def test_on_sqlite_every_count_is_exact_even_above_the_threshold(client, marketer, emea, threshold_one):
    api = _api(marketer)
    for url in SYNCED_LISTS:
        assert api.get(url).json()["count_is_estimate"] is False, url
    assert api.get("/api/v1/persons/").json()["count"] == Person.objects.count()
    client.force_login(marketer)
    assert "os-estimate" not in client.get("/admin/people/person/").content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner's estimate is PostgreSQL's")
def test_on_postgresql_the_planner_estimate_shows_as_one_and_never_reaches_a_smart_list(
    client, marketer, emea, threshold_one
):
    smart_list, campaign = emea
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE people_person")
    PersonFactory.create_batch(3, last_name="Smith")  # after the statistics: only a count sees them
    api = _api(marketer)
    body = api.get("/api/v1/persons/").json()
    assert (body["count"], body["count_is_estimate"]) == (12, True)  # the statistics' figure, not 15
    client.force_login(marketer)
    assert (
        '<span class="os-estimate" data-estimate="12"' in client.get("/admin/people/person/").content.decode()
    )

    members = evaluate(EMEA).people
    estimating = EstimatedCountPaginator(members, 2)
    assert estimating.count_is_estimate  # the estimate is there to be taken: the lists must not
    counts = _smart_list_counts(client, api, smart_list, campaign)
    assert counts == dict.fromkeys(counts, (7, False))


def test_an_estimate_reads_as_one():
    assert [about(n) for n in (0, 7, 999, 1_234, 2_448_917, 967_503)] == [
        0,
        7,
        999,
        1_230,
        2_450_000,
        968_000,
    ]
