"""Random campaign definitions (Hypothesis; derandomized under CI=true by Hypothesis's own `ci`
profile): triggers, their constraints and smart-list filters with extreme dates, numbers and
strings, POSTed to the campaign API. The answer is a 201, or a 400 whose every message names its
place and says what is wrong; never a 500."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from oppsync_site.api.throttling import _AtomicWindowThrottle
from smartlists.registry import OPERATORS, TIME_FRAMES
from tests.unit.smartlists.conftest import fields  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db
HYPOTHESIS = settings(
    max_examples=int(os.environ.get("CAMPAIGN_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOOK = "http://127.0.0.1:9/hooks"

extreme_dates = st.one_of(
    st.sampled_from(
        ["9999-12-31", "0001-01-01", "9999-12-30", "0001-01-02", "2024-02-30", "10000-01-01", "", "0"]
    ),
    st.dates().map(dt.date.isoformat),
)
extreme_datetimes = st.one_of(
    st.sampled_from(
        ["9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999-12:00", "0001-01-01T00:00:00+01:00",
         "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z", "2024-13-01T00:00:00"]
    ),
    st.datetimes(timezones=st.timezones()).map(dt.datetime.isoformat),
    extreme_dates,
)  # fmt: skip
extreme_numbers = st.one_of(
    st.sampled_from([0, -1, 2**63, -(2**63), 2**70, 10**40, 1e308, -1e308, 5e-324, "1e309", "9" * 40, "NaN"]),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
)
extreme_strings = st.one_of(
    st.sampled_from(["", " ", "%", "_", "\\", "'; --", "\x00", "a\x00", "\u202e", "\U0001d518"]),
    st.integers(1000, 6000).map(lambda n: "a" * n),
    st.text(max_size=40),
)
relative = st.one_of(
    st.sampled_from(
        ["9999 years", "2026 years", "8000 years", "100000 months", "3000000 days", "0 days", "1 year"]
    ),
    st.builds(
        "{} {}".format,
        st.one_of(st.integers(-(10**6), 10**12), st.sampled_from([0, 9999, 10**6, 2**31, 2**63])),
        st.sampled_from(["day", "days", "week", "weeks", "month", "months", "year", "years", "hours"]),
    ),
)
anything = st.one_of(
    st.none(), st.booleans(), extreme_numbers, extreme_strings, extreme_dates,
    st.lists(st.one_of(extreme_numbers, extreme_strings, extreme_dates), max_size=3),
)  # fmt: skip


def _typed(field: str, operators: list[str], values: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {"field": st.just(field), "operator": st.sampled_from(operators), "value": values}
    )


dated = ["before", "after", "on_or_before", "on_or_after"]
relative_ops = ["in_past", "in_future", "in_past_before", "in_future_after"]
numeric = ["greater_than", "less_than", "at_least", "at_most"]
texts = ["contains", "not_contains", "starts_with", "is", "is_not"]


def _date_constraints(field: str, moments: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        _typed(field, dated, moments),
        _typed(field, ["is", "is_not"], st.lists(moments, min_size=1, max_size=3)),
        _typed(field, ["between"], st.lists(moments, min_size=2, max_size=2)),
        _typed(field, relative_ops, relative),
        _typed(field, ["in_time_frame"], st.sampled_from([*TIME_FRAMES, "next_century"])),
    )


def _number_constraints(field: str) -> st.SearchStrategy:
    return st.one_of(
        _typed(field, numeric, extreme_numbers),
        _typed(field, ["is", "is_not"], st.lists(extreme_numbers, min_size=1, max_size=3)),
        _typed(field, ["between"], st.lists(extreme_numbers, min_size=2, max_size=2)),
    )


opportunity_constraints = st.one_of(
    _date_constraints("CloseDate", extreme_dates),
    _date_constraints("Signed__c", extreme_dates),
    _date_constraints("LastModifiedDate", extreme_datetimes),
    _number_constraints("Amount"),
    _number_constraints("Probability"),
    _number_constraints("Score__c"),
    _typed("Name", texts, extreme_strings),
    _typed("Champion__c", ["contains", "starts_with"], extreme_strings),
    _typed("Champion__c", ["is", "is_not"], st.lists(extreme_strings, min_size=1, max_size=2)),
    _typed("Region__c", ["is", "is_not"], st.lists(extreme_strings, min_size=1, max_size=2)),
    _typed("Role", ["is", "is_not"], st.lists(extreme_strings, min_size=1, max_size=2)),
    st.fixed_dictionaries({"field": st.sampled_from(["IsWon", "IsPrimary"]), "operator": st.sampled_from(["is_true", "is_false"])}),
    st.fixed_dictionaries(
        {"field": st.sampled_from(["Amount", "CloseDate", "Name", "Nope__c"]), "operator": st.sampled_from([*OPERATORS, "bigger"])},
        optional={"value": anything},
    ),
)  # fmt: skip
# Dates are where evaluation overflowed: drawn more often than the rest.
date_constraints = st.one_of(
    _date_constraints("CloseDate", extreme_dates), _date_constraints("LastModifiedDate", extreme_datetimes)
)
opportunity_constraints = st.one_of(date_constraints, opportunity_constraints)
change_constraints = st.one_of(
    _typed("new_value", ["is", "is_not"], st.lists(extreme_strings, min_size=1, max_size=2)),
    _typed("previous_value", ["is", "is_not"], st.lists(extreme_strings, min_size=1, max_size=2)),
    _typed("new_value", numeric, extreme_numbers),
)
triggers = st.one_of(
    st.fixed_dictionaries(
        {"trigger": st.sampled_from(["added_to_opportunity", "removed_from_opportunity"])},
        optional={"constraints": st.lists(opportunity_constraints, max_size=3)},
    ),
    st.fixed_dictionaries(
        {
            "trigger": st.just("opportunity_updated"),
            "field": st.sampled_from(["StageName", "Amount", "CloseDate", "Score__c", "Nope__c"]),
        },
        optional={"constraints": st.lists(st.one_of(change_constraints, opportunity_constraints), max_size=3)},
    ),
    st.fixed_dictionaries({"trigger": st.one_of(st.text(max_size=10), st.none())}, optional={"constraints": anything}),
)  # fmt: skip
triggers = st.one_of(
    triggers, triggers.filter(lambda t: t.get("trigger") in ("added_to_opportunity", "opportunity_updated"))
)
smart_list_filters = st.one_of(
    st.fixed_dictionaries(
        {"filter": st.just("has_opportunity"), "constraints": st.lists(opportunity_constraints, min_size=1, max_size=2)}
    ),
    st.fixed_dictionaries(
        {
            "filter": st.sampled_from(["was_added_to_opportunity", "not_was_added_to_opportunity"]),
            "constraints": st.lists(
                st.one_of(_date_constraints("date_of_activity", extreme_datetimes), _date_constraints("date_of_activity", extreme_datetimes),
                          _typed("min_number_of_times", numeric, extreme_numbers), opportunity_constraints),
                min_size=1,
                max_size=2,
            ),
        }
    ),
    st.one_of(
        st.fixed_dictionaries(
            {
                "filter": st.sampled_from(["total_opty_amount", "number_of_optys", "total_opty_expected_revenue"]),
                "operator": st.sampled_from(numeric),
                "value": extreme_numbers,
            },
            optional={"constraints": st.lists(opportunity_constraints, max_size=2)},
        ),
        st.fixed_dictionaries(
            {
                "filter": st.sampled_from(["total_opty_amount", "number_of_optys"]),
                "operator": st.just("between"),
                "value": st.lists(extreme_numbers, min_size=2, max_size=2),
            },
        ),
    ),
    st.fixed_dictionaries(
        {
            "filter": st.just("person_field"),
            "field": st.sampled_from(["email", "first_name"]),
            "operator": st.sampled_from(["contains", "starts_with", "not_contains"]),
            "value": extreme_strings,
        }
    ),
    st.fixed_dictionaries(  # anything at all, now and then
        {"filter": st.sampled_from(["has_opportunity", "person_field", "member_of_smart_list", "nope"])},
        optional={"field": extreme_strings, "operator": st.sampled_from([*OPERATORS, "bigger"]), "value": anything},
    ),
)  # fmt: skip
smart_lists = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"filters": st.lists(smart_list_filters, min_size=1, max_size=2)},
        optional={"logic": st.sampled_from(["all", "any"])},
    ),
    st.fixed_dictionaries(
        {"filters": st.lists(smart_list_filters, max_size=3)},
        optional={
            "logic": st.one_of(
                st.sampled_from(["1 and 2", "1 or (2 and 3)", "0x1", "1 and 2 or"]), st.text(max_size=8)
            )
        },
    ),
)


@pytest.fixture
def client(marketer, fields, monkeypatch):  # noqa: F811
    # A long run (CAMPAIGN_FUZZ_EXAMPLES=2000) posts faster than the API's rate limit allows.
    monkeypatch.setattr(_AtomicWindowThrottle, "allow_request", lambda self, request, view: True)
    api = APIClient()
    api.force_authenticate(marketer)
    return api


@HYPOTHESIS
@given(
    trigger_list=st.lists(triggers, min_size=1, max_size=3),
    smart_list=smart_lists,
    name=st.one_of(
        st.sampled_from(["Random", "Deals", "Won"]), st.sampled_from(["Random", "Deals"]), extreme_strings
    ),
)
def test_no_campaign_definition_makes_the_api_fail(client, trigger_list, smart_list, name):
    body = {"name": name, "triggers": trigger_list, "smart_list": smart_list, "webhook": {"url": HOOK}}
    response = client.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code in (201, 400), (response.status_code, response.content[:2000], body)
    answer = response.json()
    if response.status_code == 400:
        assert answer, body
        for where, messages in answer.items():
            assert where and isinstance(messages, list) and messages, (where, messages)
            assert all(isinstance(m, str) and len(m) > 3 for m in messages), (where, messages)
    else:
        assert answer["triggers"] == trigger_list and answer["paused_at"] is None
