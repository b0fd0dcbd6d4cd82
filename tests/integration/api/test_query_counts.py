"""The number of queries of every list endpoint does not grow with the rows: the same for 2 rows
as for 200, and small."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from opportunities.models import ContactRole

pytestmark = pytest.mark.integration

LISTS = ["/api/v1/persons/", "/api/v1/opportunities/", "/api/v1/contact-roles/", "/api/v1/activities/"]


def _queries(client, url: str, page_size: int) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, {"page_size": page_size})
    assert response.status_code == 200
    return len(context)


@pytest.mark.parametrize("url", LISTS)
def test_list_endpoints_use_a_fixed_number_of_queries(api, django_assert_max_num_queries, url):
    client = api("administrator")
    client.get(url)  # warm the settings row and the throttle cache entry
    assert _queries(client, url, 2) == _queries(client, url, 200)
    # 16, plus the planner's row estimate PostgreSQL is asked for before counting a filtered list.
    with django_assert_max_num_queries(17):
        response = client.get(url, {"page_size": 200})
    assert len(response.json()["results"]) == 200


def test_a_persons_opportunities_and_sync_status_use_a_fixed_number_of_queries(
    api, django_assert_max_num_queries
):
    person_ids = ContactRole.live.filter(person__isnull=False).values_list("person_id", flat=True)
    busiest = max(set(person_ids), key=lambda p: ContactRole.live.filter(person_id=p).count())
    client = api("administrator")
    url = f"/api/v1/persons/{busiest}/opportunities/"
    client.get(url)  # warm the throttle cache entry
    assert _queries(client, url, 1) == _queries(client, url, 200)
    with django_assert_max_num_queries(17):  # as above: the row estimate on PostgreSQL
        assert client.get(url).status_code == 200
    with django_assert_max_num_queries(24):
        assert client.get("/api/v1/sync/status/").status_code == 200
