"""Every operator of every field type, on standard columns and on custom fields, against an
independent Python reading of what each operator means (product.md §3, contract §4)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from smartlists.evaluate import smart_list_people
from smartlists.registry import OPERATORS_BY_TYPE, TIME_FRAMES
from tests.unit.smartlists.conftest import NOW, day

pytestmark = pytest.mark.django_db

# field -> (type, where the row keeps it)
FIELDS = {
    "Name": ("text", "name"),
    "Champion__c": ("text", "Champion__c"),
    "StageName": ("picklist", "stage_name"),
    "Region__c": ("picklist", "Region__c"),
    "Amount": ("currency", "amount"),
    "Score__c": ("number", "Score__c"),
    "Probability": ("percent", "probability"),
    "CloseDate": ("date", "close_date"),
    "Signed__c": ("date", "Signed__c"),
    "LastModifiedDate": ("datetime", "last_modified_in_salesforce"),
    "IsWon": ("boolean", "is_won"),
    "Strategic__c": ("boolean", "Strategic__c"),
}
VALUES: dict[str, dict[str, list[Any]]] = {
    "text": {
        "is": [["acme renewal"], ["ADA", "grace"]],
        "is_not": [["acme renewal"]],
        "contains": ["acme", "BETA"],
        "not_contains": ["acme"],
        "starts_with": ["beta", "ada"],
        "not_starts_with": ["beta"],
    },
    "picklist": {
        "is": [["EMEA"], ["EMEA", "APAC"], ["Closed Won"]],
        "is_not": [["EMEA"], ["Closed Won", "Prospecting"]],
    },
    "number": {
        "is": [[5000], [10, 99]],
        "is_not": [[5000], [10]],
        "greater_than": [1000, 10],
        "less_than": [5000, 55.5],
        "at_least": [5000, 55.5],
        "at_most": [5000, 10],
        "between": [[1000, 5000], [0, 60]],
    },
    "date": {
        "is": [[day(0).isoformat()], [day(-5).isoformat(), day(-1).isoformat()]],
        "is_not": [[day(0).isoformat()]],
        "before": [day(0).isoformat()],
        "after": [day(-5).isoformat()],
        "on_or_before": [day(-5).isoformat()],
        "on_or_after": [day(0).isoformat()],
        "between": [[day(-10).isoformat(), day(10).isoformat()]],
        "in_past": ["30 days", "2 weeks", "1 month", "1 year"],
        "in_past_before": ["30 days", "1 year"],
        "in_future": ["30 days", "2 years"],
        "in_future_after": ["30 days", "1 week"],
        "in_time_frame": list(TIME_FRAMES),
    },
}
VALUES["currency"] = VALUES["percent"] = VALUES["number"]
VALUES["datetime"] = VALUES["date"]
VALUES["boolean"] = {}

TODAY = NOW.date()
FRAMES = {  # NOW is Wednesday 2026-11-18; weeks start on Monday
    "today": (dt.date(2026, 11, 18), dt.date(2026, 11, 19)),
    "yesterday": (dt.date(2026, 11, 17), dt.date(2026, 11, 18)),
    "this_week": (dt.date(2026, 11, 16), dt.date(2026, 11, 23)),
    "last_week": (dt.date(2026, 11, 9), dt.date(2026, 11, 16)),
    "this_month": (dt.date(2026, 11, 1), dt.date(2026, 12, 1)),
    "last_month": (dt.date(2026, 10, 1), dt.date(2026, 11, 1)),
    "this_quarter": (dt.date(2026, 10, 1), dt.date(2027, 1, 1)),
    "last_quarter": (dt.date(2026, 7, 1), dt.date(2026, 10, 1)),
    "this_year": (dt.date(2026, 1, 1), dt.date(2027, 1, 1)),
    "last_year": (dt.date(2025, 1, 1), dt.date(2026, 1, 1)),
}
SPANS = {  # the same amounts of time, counted by hand from 2026-11-18
    "30 days": dt.timedelta(days=30),
    "2 weeks": dt.timedelta(days=14),
    "1 week": dt.timedelta(days=7),
    "1 month": dt.timedelta(days=31),  # 2026-10-18
    "1 year": dt.timedelta(days=365),  # 2025-11-18
    "2 years": dt.timedelta(days=730),  # 2028-11-18 (2028 is a leap year: 731 days ahead)
}
SPANS_FORWARD = {**SPANS, "1 month": dt.timedelta(days=30), "2 years": dt.timedelta(days=731)}


def _midnight(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time.min, tzinfo=dt.UTC)


def expected(kind: str, operator: str, value: Any, x: Any) -> bool:
    """What the operator means, in plain Python."""
    empty = x is None or (kind in ("text", "picklist") and x == "")
    if operator == "is_empty":
        return empty
    if operator == "is_not_empty":
        return not empty
    if operator == "is_true":
        return x is True
    if operator == "is_false":
        return x is not True
    opposite = {"is_not": "is", "not_contains": "contains", "not_starts_with": "starts_with"}
    if operator in opposite:
        return x is None or not expected(kind, opposite[operator], value, x)
    if x is None:
        return False
    if kind == "text":
        return {
            "is": lambda: any(x.lower() == v.lower() for v in value),
            "contains": lambda: value.lower() in x.lower(),
            "starts_with": lambda: x.lower().startswith(value.lower()),
        }[operator]()
    if kind == "picklist":
        return x in value
    if kind in ("number", "currency", "percent"):
        x = Decimal(str(x))

        def d(v: Any) -> Decimal:
            return Decimal(str(v))

        return {
            "is": lambda: x in [d(v) for v in value],
            "greater_than": lambda: x > d(value),
            "less_than": lambda: x < d(value),
            "at_least": lambda: x >= d(value),
            "at_most": lambda: x <= d(value),
            "between": lambda: d(value[0]) <= x <= d(value[1]),
        }[operator]()
    # Dates: a date field compares days; a datetime field compares moments with days as
    # [midnight, next midnight) in the subscription's time zone (UTC here).
    if kind == "date":
        x = dt.date.fromisoformat(x) if isinstance(x, str) else x
        low = lambda s: dt.date.fromisoformat(s)  # noqa: E731
        high = lambda s: dt.date.fromisoformat(s) + dt.timedelta(days=1)  # noqa: E731
        now = TODAY
    else:
        low = lambda s: _midnight(dt.date.fromisoformat(s))  # noqa: E731
        high = lambda s: _midnight(dt.date.fromisoformat(s) + dt.timedelta(days=1))  # noqa: E731
        now = NOW
    if operator == "is":
        return any(low(v) <= x < high(v) for v in value)
    if operator == "before":
        return x < low(value)
    if operator == "after":
        return x >= high(value)
    if operator == "on_or_before":
        return x < high(value)
    if operator == "on_or_after":
        return x >= low(value)
    if operator == "between":
        return low(value[0]) <= x < high(value[1])
    if operator == "in_time_frame":
        first, after = FRAMES[value]
        if kind == "date":
            return first <= x < after
        return _midnight(first) <= x < _midnight(after)
    back, ahead = SPANS[value], SPANS_FORWARD[value]
    if kind == "date":
        back, ahead = dt.timedelta(days=back.days), dt.timedelta(days=ahead.days)
    return {
        "in_past": lambda: now - back <= x <= now,
        "in_past_before": lambda: x < now - back,
        "in_future": lambda: now <= x <= now + ahead,
        "in_future_after": lambda: x > now + ahead,
    }[operator]()


def cases():
    for field, (kind, _) in FIELDS.items():
        for operator in OPERATORS_BY_TYPE[kind]:
            values = VALUES[kind].get(operator, [None])
            for value in values:
                yield pytest.param(field, operator, value, id=f"{field}-{operator}-{value}")


@pytest.mark.parametrize(("field", "operator", "value"), list(cases()))
def test_each_operator_selects_exactly_the_people_it_means(typed_people, clock, field, operator, value):
    kind, where = FIELDS[field]
    constraint = {"field": field, "operator": operator}
    if value is not None:
        constraint["value"] = value
    definition = {"logic": "all", "filters": [{"filter": "has_opportunity", "constraints": [constraint]}]}
    got = set(smart_list_people(definition, clock=clock).values_list("pk", flat=True))
    want = set()
    for person, _opportunity, row in typed_people:
        x = row.get(where, row["custom_fields"].get(where))
        if expected(kind, operator, value, x):
            want.add(person.pk)
    assert got == want


def test_the_cases_discriminate():
    """A guard on the test itself: the operator table above is complete for every type."""
    for kind, operators in OPERATORS_BY_TYPE.items():
        for operator in operators:
            assert operator in VALUES[kind] or operator in (
                "is_empty",
                "is_not_empty",
                "is_true",
                "is_false",
            ), (kind, operator)
