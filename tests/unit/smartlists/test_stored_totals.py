"""Aggregate filters read the sync-maintained totals table when a column holds the subset they
ask for (all, open or won opportunities, or all less the open or won ones: the closed and the
not-won ones). Whatever the operator and value, they must select
exactly the people that aggregating the roles themselves selects. So must Has Opportunity, which
reads the same columns when it has no constraint or only one of those four."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Exists, F, OuterRef

from opportunities.models import PersonOpportunityTotals
from opportunities.totals import rebuild_all_totals, refresh_person_totals
from people.models import Person
from smartlists.evaluate import (
    Clock,
    aggregate_expression,
    condition,
    filter_q,
    role_witnesses,
    stored_presence_q,
    stored_total_q,
)
from smartlists.registry import Catalog
from smartlists.validation import check_definition
from tests.factories import ContactRoleFactory, OpportunityFactory, PersonFactory
from tests.unit.smartlists.conftest import NOW

pytestmark = pytest.mark.django_db

SUBSETS = [
    [],
    [{"field": "IsWon", "operator": "is_true"}],
    [{"field": "IsClosed", "operator": "is_false"}],
    # Complements: all less the won ones, all less the open ones.
    [{"field": "IsWon", "operator": "is_false"}],
    [{"field": "IsClosed", "operator": "is_true"}],
]
COMPARISONS = [
    ("greater_than", 0),
    ("is", [0.1]),
    ("at_least", 0.1),
    ("greater_than", 4999.99),
    ("less_than", 1),
    ("less_than", 6000),
    ("at_least", 2),
    ("at_most", 0),
    ("is", [0]),
    ("is", [1, 5000.5]),
    ("is_not", [0]),
    ("is_not", [2]),
    ("between", [0, 1]),
    ("between", [1, 10000]),
    ("is_empty", None),
    ("is_not_empty", None),
]


@pytest.fixture
def people(fields):
    def deal(amount, *, won=False, closed=False, deleted=False, revenue=None):
        return OpportunityFactory(
            amount=amount, is_won=won, is_closed=closed or won, is_deleted=deleted, expected_revenue=revenue
        )

    open_small, won_big, lost = (
        deal(Decimal("1"), revenue=Decimal("0.10")),
        deal(Decimal("5000.50"), won=True),
        deal(None, closed=True),
    )
    shared = deal(Decimal("2"), won=True, revenue=Decimal("2"))
    gone = deal(Decimal("100000"), won=True, deleted=True)
    crowd = {
        name: PersonFactory(first_name=name)
        for name in ("none", "one", "two_roles", "mixed", "gone", "lost_only", "cents")
    }
    # 0.70 + 0.10 less 0.70 is 0.10 exactly only in decimal arithmetic (not in SQLite's floats).
    ContactRoleFactory(person=crowd["cents"], opportunity=deal(Decimal("0.70"), revenue=Decimal("0.70")))
    ContactRoleFactory(
        person=crowd["cents"], opportunity=deal(Decimal("0.10"), closed=True, revenue=Decimal("0.10"))
    )
    ContactRoleFactory(person=crowd["one"], opportunity=open_small)
    ContactRoleFactory(person=crowd["two_roles"], opportunity=shared)
    ContactRoleFactory(person=crowd["two_roles"], opportunity=shared, role="Evaluator")
    for opportunity in (open_small, won_big, lost, shared):
        ContactRoleFactory(person=crowd["mixed"], opportunity=opportunity)
    ContactRoleFactory(person=crowd["gone"], opportunity=gone)
    ContactRoleFactory(person=crowd["gone"], opportunity=won_big, is_deleted=True)
    ContactRoleFactory(person=crowd["lost_only"], opportunity=lost)
    return crowd


def _item(definition):
    return check_definition(definition, Catalog.load()).filters[0]


@pytest.mark.parametrize("total", ["total_opty_amount", "number_of_optys", "total_opty_expected_revenue"])
@pytest.mark.parametrize("subset", range(len(SUBSETS)))
def test_the_totals_table_selects_what_aggregating_the_roles_selects(people, total, subset):
    clock = Clock(NOW, dt.UTC)
    for operator, value in COMPARISONS:
        if total == "number_of_optys" and isinstance(value, list) and any(v != int(v) for v in value):
            continue  # a count compares to whole numbers only (validation refuses 5000.5)
        if total == "number_of_optys" and isinstance(value, float):
            value = int(value)
        definition = {
            "logic": "all",
            "filters": [{"filter": total, "operator": operator, "constraints": SUBSETS[subset]}],
        }
        if value is not None:
            definition["filters"][0]["value"] = value
        item = _item(definition)
        stored = stored_total_q(item, clock)
        money_complement = subset >= 3 and total != "number_of_optys"
        if money_complement and connection.vendor == "sqlite":
            assert stored is None, "SQLite's floating-point money is not subtracted"
            continue
        assert stored is not None, "all, open and won subsets and their complements have columns"
        computed = (
            Person.objects.annotate(v=aggregate_expression(item, OuterRef("pk"), clock))
            .filter(condition(F("v"), item.spec.value_type or "number", operator, item.value, clock))
            .values_list("first_name", flat=True)
        )
        from_table = Person.objects.filter(stored).values_list("first_name", flat=True)
        assert set(from_table) == set(computed), (total, SUBSETS[subset], operator, value)


def test_other_constraints_are_computed_from_the_roles(people):
    definition = {
        "logic": "all",
        "filters": [
            {
                "filter": "total_opty_amount",
                "operator": "at_least",
                "value": 2,
                "constraints": [{"field": "Amount", "operator": "at_least", "value": 2}],
            }
        ],
    }
    item = _item(definition)
    assert stored_total_q(item, Clock(NOW, dt.UTC)) is None
    matched = Person.objects.filter(filter_q(item, Clock(NOW, dt.UTC), lambda _: Person.objects.none()))
    assert set(matched.values_list("first_name", flat=True)) == {"two_roles", "mixed"}


def _rows() -> set[tuple]:
    return {
        tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in row)
        for row in PersonOpportunityTotals.objects.values_list()
    }


def test_refresh_and_rebuild_write_the_same_rows_and_only_for_people_with_opportunities(people):
    refreshed = _rows()
    assert rebuild_all_totals() == len(refreshed)
    assert _rows() == refreshed
    assert not PersonOpportunityTotals.objects.filter(person__in=[people["none"], people["gone"]]).exists()
    mixed = PersonOpportunityTotals.objects.get(person=people["mixed"])
    assert (mixed.number_of_optys, mixed.total_opty_amount, mixed.won_number_of_optys) == (
        4,
        Decimal("5003.50"),
        2,
    )
    assert (mixed.open_number_of_optys, mixed.open_total_opty_amount) == (1, Decimal("1"))
    refresh_person_totals([people["mixed"].pk, None])  # idempotent
    assert _rows() == refreshed


@pytest.mark.parametrize(
    ("constraints", "expected"),
    [
        ([], {"one", "two_roles", "mixed", "lost_only", "cents"}),
        ([{"field": "IsWon", "operator": "is_true"}], {"two_roles", "mixed"}),
        ([{"field": "IsClosed", "operator": "is_false"}], {"one", "mixed", "cents"}),
        ([{"field": "IsWon", "operator": "is_false"}], {"one", "mixed", "lost_only", "cents"}),
        ([{"field": "IsClosed", "operator": "is_true"}], {"two_roles", "mixed", "lost_only", "cents"}),
    ],
)
def test_has_opportunity_reads_the_totals_and_selects_what_the_roles_select(people, constraints, expected):
    clock = Clock(NOW, dt.UTC)
    item = _item({"logic": "all", "filters": [{"filter": "has_opportunity", "constraints": constraints}]})
    stored = stored_presence_q(item)
    assert stored is not None
    from_roles = Person.objects.filter(Exists(role_witnesses(item, OuterRef("pk"), clock)))
    assert set(from_roles.values_list("first_name", flat=True)) == expected
    assert set(Person.objects.filter(stored).values_list("first_name", flat=True)) == expected
    # Not having one is the complement, people without a totals row included.
    others = set(Person.objects.exclude(stored).values_list("first_name", flat=True))
    assert others == set(Person.objects.values_list("first_name", flat=True)) - expected


def test_has_opportunity_with_other_constraints_reads_the_roles(people):
    won_over_5k = [
        {"field": "IsWon", "operator": "is_true"},
        {"field": "Amount", "operator": "at_least", "value": 5000},
    ]
    item = _item({"logic": "all", "filters": [{"filter": "has_opportunity", "constraints": won_over_5k}]})
    assert stored_presence_q(item) is None
    matched = Person.objects.filter(filter_q(item, Clock(NOW, dt.UTC), lambda _: Person.objects.none()))
    assert set(matched.values_list("first_name", flat=True)) == {"mixed"}
