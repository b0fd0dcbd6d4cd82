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
