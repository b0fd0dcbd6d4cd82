"""Tiny runs of the page and smart-list benchmarks, so they never rot: every page answers, and
each hand-written SQL baseline agrees with OppSync's own count on the generated org."""

from __future__ import annotations

import pytest

from bench import pages, smartlists
from bench.bigorg import BigOrgSize, generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_org():
    generate(BigOrgSize.scaled(400), report=lambda _line: None)


def test_every_benchmarked_page_answers(tiny_org):
    results = pages.measure(runs=1)
    assert len(results) >= 25
    assert [url for url, status, _p50 in results if status != 200] == []


def test_the_smart_list_baselines_agree_with_the_engine(tiny_org):
    results = smartlists.measure(runs=1)
    assert len(results) == 7
    for name, _orm, _sql, orm_count, sql_count in results:
        assert orm_count == sql_count, name
    assert sum(1 for *_rest, count, _ in results if count) >= 4  # the lists are not trivially empty
    rows, _seconds, _before, _after = smartlists.csv_export(
        {"logic": "all", "filters": [{"filter": "number_of_optys", "operator": "at_least", "value": 2}]}
    )
    assert rows > 50  # people hold several opportunities, not one role many times


def test_the_daily_reconcile_projection_runs_and_keeps_the_interval(settings, capsys):
    from bench.sync_idle_calls import day_with_a_reconcile

    settings.SALESFORCE_SYNC_INTERVAL = 5.0
    settings.SALESFORCE_API_BUDGET = 0.5
    day_with_a_reconcile(1.0, [0.2, 0.3], 100_000, 5.0)
    out = capsys.readouterr().out
    assert "reconcile_calls 2,750" in out and "hour_after_the_reconcile: interval 5.0 s" in out
