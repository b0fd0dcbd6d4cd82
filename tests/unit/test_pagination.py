"""Big unfiltered lists are counted from PostgreSQL's statistics; everything else exactly."""

from __future__ import annotations

import pytest
from django.db import connection

from oppsync_site.pagination import EstimatedCountPaginator, plan_estimate
from people.models import Person
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


def test_a_whole_big_table_is_estimated_and_a_filtered_list_counted(monkeypatch):
    PersonFactory.create_batch(30)
    Person.objects.filter(pk__in=Person.objects.order_by("id").values("pk")[:10]).update(company="Acme")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE people_person")
    PersonFactory.create_batch(5)  # after the statistics were taken: only an exact count sees them
    monkeypatch.setattr(EstimatedCountPaginator, "ESTIMATE_ABOVE", 5)
    whole = EstimatedCountPaginator(Person.objects.order_by("id"), 10)
    filtered = EstimatedCountPaginator(Person.objects.filter(company="Acme").order_by("id"), 10)
    if connection.vendor == "postgresql":
        assert whole.count == 30  # the planner's figure from ANALYZE, not a COUNT(*)
        estimate = plan_estimate(Person.objects.filter(company="Acme"))
        assert estimate is not None and filtered.count == (estimate if estimate > 5 else 10)
    else:
        assert whole.count == 35
        assert filtered.count == 10


def test_narrow_lists_are_counted_exactly():
    PersonFactory.create_batch(3, company="Acme")
    paginator = EstimatedCountPaginator(Person.objects.filter(company="Acme").order_by("id"), 10)
    assert paginator.count == 3


@pytest.mark.parametrize("raw", ["²", "\u0661\u0660", "10.0", "0", "1001", "-5", " 5"])
def test_page_size_takes_ascii_whole_numbers_only(administrator, raw):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(administrator)
    for url in ("/api/v1/persons/", "/api/v1/opportunities/", "/api/v1/activities/", "/api/v1/campaigns/"):
        response = client.get(url, {"page_size": raw})
        assert response.status_code == 400, (url, raw, response.content)
        assert "page_size" in response.json()


@pytest.mark.parametrize(
    ("url", "query", "named"),
    [
        ("/api/v1/opportunities/", {"stgae": "Closed Won"}, "stgae"),
        ("/api/v1/persons/", {"emial": "a@example.com"}, "emial"),
        ("/api/v1/activities/", {"type": "nonsense"}, "type"),
        ("/api/v1/activities/", {"since": "yesterday"}, "since"),
        ("/api/v1/smart-lists/", {"name__regex": "x"}, "name__regex"),
        ("/api/v1/campaigns/", {"status": "failed"}, "status"),
    ],
)
def test_unknown_parameters_and_values_are_a_400_naming_them(administrator, url, query, named):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(administrator)
    response = client.get(url, query)
    assert response.status_code == 400, response.content
    assert named in response.json()


def test_the_parameters_an_endpoint_takes_still_work(administrator):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(administrator)
    for url, query in [
        ("/api/v1/opportunities/", {"stage": "Closed Won", "is_closed": "true", "page_size": "5"}),
        ("/api/v1/persons/", {"search": "smith", "page": "1"}),
        ("/api/v1/activities/", {"type": "added_to_opportunity", "since": "2026-01-01T00:00:00Z"}),
    ]:
        assert client.get(url, query).status_code == 200, url


@pytest.mark.parametrize("debug", [True, False])
def test_a_404_under_api_is_json_in_every_settings_module(settings, client, debug):
    settings.DEBUG = debug
    for url in ("/api/v1/nope/", "/api/v1/persons/999999999/", "/api/"):
        response = client.get(url)
        assert response.status_code in (401, 403, 404)
        assert response["Content-Type"].startswith("application/json"), (url, response["Content-Type"])
