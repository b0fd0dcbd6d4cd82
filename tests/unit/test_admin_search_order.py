"""An admin search's page comes from its matches, sorted, not from a walk of the name index that
tests every row (oppsync_site/admin_search.py): the same people in the same order, and on
PostgreSQL a plan that cannot walk the name index while the planner expects few matches."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory

from oppsync_site.pagination import EstimatedCountPaginator
from people.models import Person
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db
NAME_INDEXES = ("person_name_idx", "person_list_idx")


@pytest.fixture
def people(db):
    # The Smiths sit together at the end of the alphabet, as in a real org.
    for n in range(40):
        PersonFactory(
            first_name=f"Ann{n:02d}", last_name=f"Abbott{n:02d}", email=f"a{n}@example.com", company="Acme"
        )
    for first in ("Zoe", "Bob", "amy"):
        PersonFactory(
            first_name=first, last_name="Smith", email=f"{first.lower()}@example.com", company="Acme"
        )
    PersonFactory(first_name="Carl", last_name="Goldsmith", email="carl@example.com", company="Acme")
    PersonFactory(first_name="Dan", last_name="Young", email="dan@smithco.example", company="Acme")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE people_person")


def _changelist_queryset(superuser, query: str):
    request = RequestFactory().get("/admin/people/person/", {"q": query})
    request.user = superuser
    return admin.site.get_model_admin(Person).get_changelist_instance(request).queryset


def _plan(queryset) -> str:
    sql, params = queryset[:50].query.sql_with_params()
    with connection.cursor() as cursor:
        # Every index path priced below a table scan, so a small table plans as a big one would.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return json.dumps(plan if not isinstance(plan, str) else json.loads(plan))


def test_a_search_lists_the_same_people_in_name_order(superuser, people):
    found = list(_changelist_queryset(superuser, "smith").values_list("pk", flat=True))
    by_columns = Person.objects.filter(pk__in=found).order_by("last_name", "first_name", "id")
    assert len(found) == 5
    assert found == list(by_columns.values_list("pk", flat=True))
    assert list(by_columns.values_list("last_name", flat=True)) == [
        "Goldsmith",
        "Smith",
        "Smith",
        "Smith",
        "Young",
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigram indexes are PostgreSQL's")
def test_a_narrow_search_is_sorted_from_its_matches_never_by_walking_the_name_index(superuser, people):
    plan = _plan(_changelist_queryset(superuser, "smith"))
    assert "person_last_name_trgm" in plan
    assert not any(index in plan for index in NAME_INDEXES), plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigram indexes are PostgreSQL's")
def test_a_broad_search_keeps_the_walk_that_fills_its_page_at_once(superuser, people, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "ESTIMATE_ABOVE", 0)  # every search is "broad"
    plan = _plan(_changelist_queryset(superuser, "example"))
    assert any(index in plan for index in NAME_INDEXES), plan


def test_an_ordering_that_names_no_column_is_left_as_it_is():
    """An annotation's alias or a random order is no column an index walks: kept, not a 500."""
    from oppsync_site.admin_search import _outside_any_index

    assert _outside_any_index(Person, "?") == "?"
    assert _outside_any_index(Person, "-latest_activity") == "-latest_activity"
