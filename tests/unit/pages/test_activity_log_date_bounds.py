"""The activity log's date limits at the ends of the calendar are refused in words (ignored,
with a message), never a 500: 9999-12-31 has no next day, 0001-01-01 east of UTC no midnight."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from opportunities.admin_pages import activity_filters_from

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01", "from=1699-12-31"])
def test_a_limit_outside_the_calendar_salesforce_stores_is_ignored_with_a_message(query):
    filters = activity_filters_from(RequestFactory().get(f"/?{query}"))
    assert filters.occurred_from is None and filters.occurred_before is None
    assert len(filters.errors) == 1 and "outside 1700-01-01 to 4000-12-31" in filters.errors[0]


def test_a_limit_inside_it_still_applies():
    filters = activity_filters_from(RequestFactory().get("/?from=2026-01-01&to=2026-01-31"))
    assert filters.errors == [] and filters.occurred_from < filters.occurred_before
