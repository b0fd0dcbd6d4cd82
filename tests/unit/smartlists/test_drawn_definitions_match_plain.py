"""Definitions nobody chose (issue P12): drawn from the registry on a small generated org, each
one's count and members through the fast path equal the plain evaluation's, which reads no
per-person table."""

from __future__ import annotations

import pytest
from django.utils import timezone

from bench.bigorg import BigOrgSize, generate
from bench.random_definitions import Generator, saved_lists
from smartlists.evaluate import Clock, evaluate
from smartlists.registry import FILTERS, Catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_org():
    generate(BigOrgSize.scaled(600), report=lambda _line: None)


def _drawn(count: int, seed: int) -> list[dict]:
    catalog = Catalog.load()
    lists = saved_lists(Generator(catalog, seed + 1))
    generator = Generator(catalog, seed, lists)
    return [generator.definition() for _ in range(count)]


def test_every_random_definition_counts_what_the_plain_evaluation_counts(small_org):
    definitions = _drawn(80, seed=5)
    clock = Clock.current(timezone.now())
    non_empty = 0
    for definition in definitions:
        fast = evaluate(definition, clock=clock)
        plain = evaluate(definition, clock=clock, precomputed=False)
        members = set(fast.people.values_list("pk", flat=True))
        assert members == set(plain.people.values_list("pk", flat=True)), definition
        assert fast.people.count() == len(members), definition
        non_empty += 0 < len(members) < 600
    assert non_empty >= 20  # the draws are not trivially empty or everyone


def test_the_draws_reach_every_filter_and_advanced_logic(small_org):
    definitions = _drawn(80, seed=5)
    named = {f["filter"] for definition in definitions for f in definition["filters"]}
    assert named == set(FILTERS)
    assert any(d["logic"] not in ("all", "any") and " or " in d["logic"] for d in definitions)
    constraints = [c for d in definitions for f in d["filters"] for c in f.get("constraints", [])]
    assert {"new_value", "date_of_activity", "Role", "IsPrimary"} <= {c["field"] for c in constraints}


@pytest.mark.parametrize("complement_above", [-1.0, 2.0], ids=["by-complement", "directly"])
def test_an_aggregate_over_some_opportunities_counts_the_same_either_way(
    small_org, monkeypatch, complement_above
):
    """On PostgreSQL an aggregate whose constraints keep most opportunities is counted as the
    person's whole total less the rest (`COMPLEMENT_ABOVE`); both ways give the plain count."""
    import smartlists.evaluate as evaluation

    monkeypatch.setattr(evaluation, "COMPLEMENT_ABOVE", complement_above)
    aggregates = [
        definition
        for definition in _drawn(200, seed=9)
        if any(
            f["filter"] in ("total_opty_amount", "number_of_optys", "total_opty_expected_revenue")
            and f.get("constraints")
            for f in definition["filters"]
        )
    ]
    assert len(aggregates) >= 20
    clock = Clock.current(timezone.now())
    for definition in aggregates:
        counted = evaluate(definition, clock=clock).people.count()
        assert counted == evaluate(definition, clock=clock, precomputed=False).people.count(), definition


def _fast_and_plain(definition: dict) -> tuple[int, int, int]:
    clock = Clock.current(timezone.now())
    fast = evaluate(definition, clock=clock)
    plain = evaluate(definition, clock=clock, precomputed=False)
    return fast.people.count(), plain.people.count(), len(set(plain.people.values_list("pk", flat=True)))


OPEN_REMOVAL = {
    "filter": "not_was_removed_from_opportunity",
    "constraints": [{"field": "IsClosed", "operator": "is_false"}],
}
STAGED = {"filter": "has_opportunity", "constraints": [{"field": "StageName", "operator": "is_not_empty"}]}
BIG_TOTAL = {
    "filter": "total_opty_amount",
    "operator": "at_least",
    "value": 20000,
    "constraints": [{"field": "Amount", "operator": "at_least", "value": 5000}],
}
TWICE_ADDED = {
    "filter": "was_added_to_opportunity",
    "constraints": [{"field": "min_number_of_times", "operator": "at_least", "value": 2}],
}


@pytest.mark.parametrize(
    ("logic", "filters", "nested"),
    [
        ("all", [OPEN_REMOVAL, BIG_TOTAL], None),  # an EXISTS beside an aggregate counted as a set
        ("all", [STAGED, TWICE_ADDED], None),  # beside a minimum number of times
        ("all", [STAGED, "list"], {"logic": "all", "filters": [OPEN_REMOVAL, BIG_TOTAL]}),
        ("1 or 2", [BIG_TOTAL, "list"], {"logic": "all", "filters": [OPEN_REMOVAL, TWICE_ADDED]}),
        ("1 and (2 or 3)", [OPEN_REMOVAL, STAGED, TWICE_ADDED], None),
    ],
    ids=["exists-and-aggregate", "exists-and-min-times", "exists-and-list", "list-under-or", "mixed"],
)
def test_filters_anded_with_the_rest_count_what_the_plain_evaluation_counts(
    small_org, logic, filters, nested
):
    """On PostgreSQL such a filter keeps its EXISTS in the count (`conjunctive_numbers`) unless
    an aggregate or a list is counted as a set beside it; a nested list counts as sets."""
    from smartlists.models import SmartList

    if nested is not None:
        saved = SmartList.objects.create(name="nested", definition=nested)
        filters = [
            {"filter": "member_of_smart_list", "operator": "is", "value": [saved.pk]} if f == "list" else f
            for f in filters
        ]
    fast, plain, members = _fast_and_plain({"logic": logic, "filters": filters})
    assert fast == plain == members
    assert 0 < members < 600, "a list that is neither empty nor everyone"
