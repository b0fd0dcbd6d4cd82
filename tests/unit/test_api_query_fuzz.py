"""P9: every GET endpoint, with query strings Hypothesis makes up (Unicode digits, huge numbers,
known parameter names with odd values, unknown names), never answers 500, and every answer is
JSON (CSV for the export)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from smartlists.models import SmartList
from tests.factories import ActivityFactory, ContactRoleFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/persons/",
    "/api/v1/persons/{person}/",
    "/api/v1/persons/{person}/opportunities/",
    "/api/v1/opportunities/",
    "/api/v1/opportunities/{opportunity}/",
    "/api/v1/contact-roles/",
    "/api/v1/activities/",
    "/api/v1/filters/",
    "/api/v1/smart-lists/",
    "/api/v1/smart-lists/{list}/",
    "/api/v1/smart-lists/{list}/members/",
    "/api/v1/smart-lists/{list}/members.csv",
    "/api/v1/smart-lists/{list}/members/{person}/why/",
    "/api/v1/campaigns/",
    "/api/v1/settings/",
    "/api/v1/sync/status/",
]
NAMES = ["page", "page_size", "email", "sf_id", "search", "stage", "is_closed", "is_won", "has_contact_roles",
         "opportunity", "person", "type", "since", "ordering", "fields", "ignore_inactive_fields", "status"]  # fmt: skip
# Date-times at the ends of the calendar, with and without offsets and microseconds: some of
# them leave years 1-9999 once converted to UTC.
EDGE_DATETIMES = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00",
    "0001-01-01",
    "9999-12-31T23:59:59.999999",
    "9999-12-31T23:59:59.999999-00:01",
    "9999-12-31T23:00:00-14:00",
    "2026-02-29T00:00:00Z",
]
ODD_VALUES = st.one_of(
    st.sampled_from(
        [
            "²",
            "\u0661\u0660",
            "9" * 40,
            "-1",
            "0",
            "1e309",
            "NaN",
            "true",
            "",
            "%00",
            "1.5",
            "\x00",
            *EDGE_DATETIMES,
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=30),
)
QUERIES = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=12)), ODD_VALUES, max_size=4
)


@pytest.fixture
def world(administrator):
    role = ContactRoleFactory()
    ActivityFactory(person=role.person, opportunity=role.opportunity)
    smart_list = SmartList.objects.create(
        name="All",
        definition={
            "logic": "all",
            "filters": [{"filter": "number_of_optys", "operator": "at_least", "value": 0}],
        },
    )
    client = APIClient()
    client.force_authenticate(administrator)
    ids = {"person": role.person_id, "opportunity": role.opportunity_id, "list": smart_list.pk}
    return client, ids


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(endpoint=st.sampled_from(ENDPOINTS), query=QUERIES)
def test_no_query_string_makes_an_endpoint_fail(world, endpoint, query):
    client, ids = world
    url = endpoint.format(**ids)
    response = client.get(url, query)
    assert response.status_code < 500, (url, query, response.content[:500])
    kind = response["Content-Type"]
    assert kind.startswith("application/json") or (url.endswith(".csv") and kind.startswith("text/csv")), (
        url,
        kind,
    )


OUTSIDE_UTC = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.999999-00:01",
    "9999-12-31T23:00:00-14:00",
]


@pytest.mark.parametrize("moment", EDGE_DATETIMES)
def test_a_since_outside_utc_is_a_400_that_names_it(world, moment):
    """`?since=0001-01-01T00:00:00+01:00` lies before year 1 in UTC: converting it for the
    database raised OverflowError (a 500); now a 400 on `since` that names the value. The ends
    themselves, in UTC, are fine; 29 February 2026 does not exist."""
    client, _ids = world
    response = client.get("/api/v1/activities/", {"since": moment})
    if moment in OUTSIDE_UTC:
        assert response.status_code == 400, response.content
        assert moment in response.json()["since"][0]
        assert "UTC" in response.json()["since"][0]
    elif moment.startswith("2026-02-29"):
        assert response.status_code == 400 and response.json()["since"]
    else:
        assert response.status_code == 200, response.content
