"""Which filters the counting query keeps as EXISTS (PostgreSQL joins them) and which it turns
into sets of people: a filter ANDed with everything else joins, one under an OR is a set."""

from __future__ import annotations

import pytest

from smartlists.evaluate import conjunctive_numbers
from smartlists.logic import logic_rule


@pytest.mark.parametrize(
    ("logic", "count", "joined"),
    [
        ("all", 1, {1}),
        ("any", 1, {1}),
        ("all", 3, {1, 2, 3}),
        ("any", 3, set()),
        ("1 and (2 or 3)", 3, {1}),
        ("(1 and 2) and (3 or 4)", 4, {1, 2}),
        ("1 or (2 and 3)", 3, set()),
        ("(1 or 2) and (3 or 4)", 4, set()),
    ],
)
def test_only_filters_anded_with_everything_else_are_joined(logic, count, joined):
    assert conjunctive_numbers(logic_rule(logic, count)) == joined
