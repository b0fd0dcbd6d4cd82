"""Random definitions, valid and invalid (Hypothesis): the API never fails with a 500, and the
logic means what it says: `1 or 2` is the union and `1 and 2` the intersection of the single-filter
member sets, `any` equals the OR rule and `all` the AND rule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from smartlists.evaluate import Clock, smart_list_people
from smartlists.registry import FILTERS, OPERATORS, TIME_FRAMES, Catalog
from smartlists.validation import check_definition
from tests.factories import ActivityFactory, ContactRoleFactory, OpportunityFactory, PersonFactory
from tests.unit.smartlists.conftest import NOW

pytestmark = pytest.mark.django_db
HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIELDS = ["Name", "StageName", "Amount", "Probability", "CloseDate", "LastModifiedDate", "IsWon", "Region__c",
          "Score__c", "Signed__c", "Champion__c", "Strategic__c", "Role", "IsPrimary", "date_of_activity",
          "min_number_of_times", "new_value", "previous_value", "Nope__c"]  # fmt: skip
dates = st.dates(dt.date(2024, 1, 1), dt.date(2028, 1, 1)).map(dt.date.isoformat)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-100, 20_000),
    # JSON has no NaN or infinity: a client cannot send them (the API reads JSON).
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    dates,
    st.sampled_from(["30 days", "2 weeks", "1 month", "3 years", "0 days", "9999 days", "soon"]),
    st.sampled_from(TIME_FRAMES),
    st.lists(
        st.sampled_from(["EMEA", "AMER", "APAC", "Prospecting", "Closed Won", "Evaluator", "ada"]), max_size=3
    ),
    st.lists(st.integers(0, 10_000), min_size=2, max_size=2),
    st.lists(dates, min_size=2, max_size=2),
)
constraints = st.fixed_dictionaries(
    {"field": st.sampled_from(FIELDS), "operator": st.sampled_from([*OPERATORS, "bigger"])},
    optional={"value": values},
)
filters = st.fixed_dictionaries(
    {"filter": st.sampled_from([*FILTERS, "has_opportunities"])},
    optional={
        "constraints": st.lists(constraints, max_size=3),
        "field": st.sampled_from(["StageName", "Amount", "email", "first_name", "Region__c", "nope"]),
        "operator": st.sampled_from([*OPERATORS, "bigger"]),
        "value": values,
    },
)
# Filters that are valid by construction (for the logic properties): every field type, operator
# and value kind, plus activity, aggregate and person filters.
VALID_CONSTRAINTS = st.one_of(
    st.builds(
        lambda v: {"field": "Region__c", "operator": "is", "value": v},
        st.lists(st.sampled_from(["EMEA", "AMER", "APAC"]), min_size=1, max_size=2),
    ),
    st.builds(
        lambda v: {"field": "Region__c", "operator": "is_not", "value": [v]},
        st.sampled_from(["EMEA", "AMER"]),
    ),
    st.sampled_from(
        [
            {"field": f, "operator": o}
            for f in ("Region__c", "Amount", "CloseDate", "Champion__c")
            for o in ("is_empty", "is_not_empty")
        ]
    ),
    st.builds(
        lambda o, v: {"field": "Amount", "operator": o, "value": v},
        st.sampled_from(["greater_than", "less_than", "at_least", "at_most"]),
        st.integers(0, 12_000),
    ),
    st.builds(
        lambda o, v: {"field": "Score__c", "operator": o, "value": v},
        st.sampled_from(["greater_than", "at_most"]),
        st.integers(0, 80),
    ),
    st.builds(
        lambda a, b: {"field": "Amount", "operator": "between", "value": [min(a, b), max(a, b)]},
        st.integers(0, 12_000),
        st.integers(0, 12_000),
    ),
    st.builds(
        lambda o, v: {"field": "CloseDate", "operator": o, "value": v},
        st.sampled_from(["in_past", "in_future", "in_past_before", "in_future_after"]),
        st.sampled_from(["30 days", "2 weeks", "3 months", "1 year"]),
    ),
    st.builds(
        lambda v: {"field": "CloseDate", "operator": "in_time_frame", "value": v},
        st.sampled_from(TIME_FRAMES),
    ),
    st.builds(
        lambda o, v: {"field": "CloseDate", "operator": o, "value": v},
        st.sampled_from(["before", "after", "on_or_before", "on_or_after"]),
        dates,
    ),
    st.builds(
        lambda o, v: {"field": "Champion__c", "operator": o, "value": v},
        st.sampled_from(["contains", "starts_with", "not_contains"]),
        st.sampled_from(["ad", "b", "x"]),
    ),
    st.sampled_from(
        [{"field": f, "operator": o} for f in ("IsWon", "IsPrimary") for o in ("is_true", "is_false")]
    ),
    st.builds(
        lambda v: {"field": "Role", "operator": "is", "value": [v]},
        st.sampled_from(["Evaluator", "Decision Maker"]),
    ),
)
valid_filters = st.one_of(
    st.builds(
        lambda c: {"filter": "has_opportunity", "constraints": c}, st.lists(VALID_CONSTRAINTS, max_size=3)
    ),
    st.builds(
        lambda k, d: {
            "filter": k,
            "constraints": [{"field": "date_of_activity", "operator": "in_past", "value": d}],
        },
        st.sampled_from(["was_added_to_opportunity", "not_was_added_to_opportunity"]),
        st.sampled_from(["30 days", "60 days", "1 year"]),
    ),
    st.builds(
        lambda k, o, v: {"filter": k, "operator": o, "value": v},
        st.sampled_from(["total_opty_amount", "number_of_optys"]),
        st.sampled_from(["at_least", "less_than"]),
        st.integers(0, 8000),
    ),
    st.builds(
        lambda v: {"filter": "person_field", "field": "email", "operator": "contains", "value": v},
        st.sampled_from(["r1", "r2", "@example"]),
    ),
)

logics = st.one_of(
    st.sampled_from(["all", "any", "1 and 2", "1 or 2", "(1 or 2) and 3", "1 and or 2", "1 and 2 or 3", "4"]),
    st.text(max_size=8),
)
definitions = st.fixed_dictionaries({"logic": logics, "filters": st.lists(filters, min_size=0, max_size=3)})


@pytest.fixture
def people(fields):
    regions = ["EMEA", "AMER", None]
    for n in range(12):
        person = PersonFactory(first_name=f"R{n}", email=f"r{n}@example.com")
        custom = {
            "Region__c": regions[n % 3],
            "Score__c": n * 7,
            "Champion__c": "ada" if n % 4 == 0 else "bob",
        }
        opportunity = OpportunityFactory(
            amount=Decimal(1000 * n) if n % 5 else None,
            is_won=n % 2 == 0,
            stage_name=["Prospecting", "Closed Won", "Negotiation"][n % 3],
            close_date=(NOW + dt.timedelta(days=10 * n - 60)).date(),
            custom_fields={k: v for k, v in custom.items() if v is not None},
        )
        if n % 6:
            ContactRoleFactory(
                person=person,
                opportunity=opportunity,
                role=["Evaluator", "Decision Maker"][n % 2],
                is_primary=n % 3 == 0,
            )
            ActivityFactory(
                person=person,
                opportunity=opportunity,
                activity_type="added_to_opportunity",
                occurred_at=NOW - dt.timedelta(days=n * 9),
                role="Evaluator",
            )


@HYPOTHESIS
@given(definition=definitions)
def test_no_definition_makes_the_api_fail(marketer, people, definition):
    client = APIClient()
    client.force_authenticate(marketer)
    response = client.post("/api/v1/smart-lists/preview/", definition, format="json")
    assert response.status_code in (200, 400, 409), response.content
    body = response.json()
    if response.status_code == 400:
        assert body and all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body.values())
    else:
        assert isinstance(body.get("count", body.get("warnings")), int | list)


@HYPOTHESIS
@given(first=valid_filters, second=valid_filters)
def test_or_is_the_union_and_and_the_intersection(people, first, second):
    catalog = Catalog.load()
    for one in (first, second):
        check_definition({"logic": "all", "filters": [one]}, catalog)  # valid by construction
    clock = Clock(NOW, dt.UTC)

    def ids(logic, chosen):
        members = smart_list_people({"logic": logic, "filters": chosen}, clock=clock, catalog=catalog)
        found = set(members.values_list("pk", flat=True))
        # The count (on PostgreSQL a different, union-shaped query for an OR) agrees with the rows.
        assert members.count() == len(found)
        return found

    a, b = ids("all", [first]), ids("all", [second])
    assert ids("1 or 2", [first, second]) == a | b == ids("any", [first, second])
    assert ids("1 and 2", [first, second]) == a & b == ids("all", [first, second])
