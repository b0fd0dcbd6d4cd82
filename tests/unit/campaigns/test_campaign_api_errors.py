"""P11 case 6 (the campaign part): definitions that used to answer 500 get a 400 that names the
place and the problem — a URL `urlsplit` cannot read, a trigger or smart-list value the
evaluation cannot compute (a day after 9999-12-31, 9999 years back), a NUL PostgreSQL cannot
store. The admin editor saves through this API and shows each message under its field."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign
from tests.unit.smartlists.conftest import fields  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db
HOOK = "http://127.0.0.1:9/hooks"
ADDED = [{"trigger": "added_to_opportunity"}]


def _post(client, **changes):
    body = {"name": "Edge", "triggers": ADDED, "webhook": {"url": HOOK}, **changes}
    return client.post("/api/v1/campaigns/", body, format="json")


@pytest.fixture
def client(marketer, fields):  # noqa: F811
    api = APIClient()
    api.force_authenticate(marketer)
    return api


@pytest.mark.parametrize(
    ("changes", "place", "words"),
    [
        ({"webhook": {"url": "http://[::1/x"}}, "webhook.url", "not a valid URL"),
        ({"webhook": {"url": "https://[fe80::1%25eth0/x"}}, "webhook.url", "not a valid URL"),
        (
            {"triggers": [{"trigger": "added_to_opportunity", "constraints": [
                {"field": "CloseDate", "operator": "is", "value": ["9999-12-31"]}]}]},
            "triggers[0]",
            "9999",
        ),
        (
            {"smart_list": {"filters": [{"filter": "has_opportunity", "constraints": [
                {"field": "CloseDate", "operator": "in_past", "value": "9999 years"}]}]}},
            "smart_list",
            "",
        ),
        (
            {"smart_list": {"filters": [
                {"filter": "number_of_optys", "operator": "at_least", "value": 0},
                {"filter": "was_added_to_opportunity", "constraints": [
                    {"field": "date_of_activity", "operator": "after", "value": "9999-12-31T23:59:59.999999"}]},
            ]}},
            "smart_list",
            "",
        ),
        ({"name": "Nul\x00"}, "name", "NUL"),
        (
            {"triggers": [{"trigger": "added_to_opportunity", "constraints": [
                {"field": "Name", "operator": "contains", "value": "a\x00b"}]}]},
            "triggers[0].constraints[0].value",
            "NUL",
        ),
    ],
)  # fmt: skip
def test_values_that_used_to_fail_with_a_500_get_a_named_400(client, changes, place, words):
    response = _post(client, **changes)
    assert response.status_code == 400, response.content[:1000]
    body = response.json()
    # The smart-list layer may name the exact value (its own validation) or this layer the
    # filter that cannot be evaluated: either way the place starts with the part at fault.
    [(where, messages)] = [(k, v) for k, v in body.items() if k.startswith(place)]
    assert messages and all(len(m) > 10 for m in messages), body
    assert words in where + " ".join(messages), body
    assert not Campaign.objects.exists()


def test_the_admin_editor_shows_the_webhook_url_message_under_its_field(client, marketer):
    """The editor posts to the API and puts each 400 message into the element for its place."""
    client.force_login(marketer)
    page = client.get("/admin/campaigns/campaign/add/").content.decode()
    assert 'data-error-for="webhook.url"' in page and 'data-error-for="triggers"' in page


@pytest.mark.parametrize(
    ("changes", "place", "words"),
    [
        ({"name": "\ud800"}, "name", "surrogate"),
        ({"description": "a\udfffb"}, "description", "surrogate"),
        ({"triggers": [{"trigger": "added_to_opportunity", "\ud800": 1}]}, "triggers[0]", "surrogate"),
        ({"triggers": [{"trigger": "added_to_opportunity", "\ud800": "\ud800"}]}, "triggers[0]", "surrogate"),
        ({"webhook": {"url": HOOK, "headers": {"X-Token": "a\ud800"}}}, "webhook.headers.X-Token", "surrogate"),
        ({"webhook": {"url": HOOK, "headers": {"X-\ud800": "a"}}}, "webhook.headers", "surrogate"),
        ({"webhook": {"url": HOOK, "headers": {"Authorization": "Bearer café✓"}}},
         "webhook.headers.Authorization", "Latin-1"),
        ({"webhook": {"url": HOOK, "headers": {"X-Token": "a\x07b"}}}, "webhook.headers.X-Token", "control"),
        ({"webhook": {"url": HOOK, "headers": {"X-Token\n": "a"}}}, "webhook.headers.X-Token\n", "header name"),
        ({"webhook": {"url": HOOK, "headers": {"X-Token": " Bearer x"}}}, "webhook.headers.X-Token", "leading space"),
        ({"webhook": {"url": HOOK, "headers": {"X-Token": "\tx"}}}, "webhook.headers.X-Token", "leading space"),
    ],
)  # fmt: skip
def test_text_no_database_stores_or_no_header_carries_gets_a_named_400(client, changes, place, words):
    """A lone surrogate anywhere in the campaign (a 500 on both databases before the fix), a header
    value outside Latin-1 or with a control character (saved, then every attempt raised in
    http.client and was retried forever): a 400 naming the place."""
    body = {"name": "Edge", "triggers": ADDED, "webhook": {"url": HOOK}, **changes}
    # json.dumps escapes the surrogate (\ud800), as a client sending it would.
    response = client.post("/api/v1/campaigns/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content[:1000]
    errors = response.json()
    assert place in errors, errors
    assert words in " ".join(errors[place]), errors
    assert not Campaign.objects.exists()
