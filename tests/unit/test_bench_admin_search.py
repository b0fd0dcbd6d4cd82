"""A tiny run of bench/admin_search.py, so it never rots: its people match a surname only through
their names and emails (together in the alphabet), and every page it times answers."""

from __future__ import annotations

import pytest

from bench import admin_search, pages
from people.models import Person

pytestmark = pytest.mark.django_db


def test_the_admin_search_benchmark_builds_clustered_matches_and_its_pages_answer():
    admin_search.build(400)
    smiths = Person.objects.filter(last_name__icontains="smith")
    assert smiths.exists()
    assert not Person.objects.filter(company__icontains="smith").exists()
    assert [url for url, status, _p50 in pages.measure(1, admin_search.URLS) if status != 200] == []
