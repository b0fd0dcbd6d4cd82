"""P7 point 4: the API budget is spent honestly (the interval estimator's maths)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from opportunities.models import SyncCycle, SyncStatus
from opportunities.sync.schedule import effective_interval

pytestmark = pytest.mark.django_db


def _cycles(*calls: int, expensive: dict[int, int] | None = None) -> None:
    """Cycles a minute apart, oldest first; `expensive` maps an index to a reconcile's calls."""
    start = timezone.now() - dt.timedelta(minutes=len(calls) + 1)
    for n, count in enumerate(calls):
        at = start + dt.timedelta(minutes=n)
        reconciled = bool(expensive and n in expensive)
        SyncCycle.objects.create(
            started_at=at,
            ended_at=at + dt.timedelta(seconds=2),
            status=SyncStatus.SUCCEEDED,
            api_calls=expensive[n] if expensive and reconciled else count,
            api_usage_max=100_000,
            reconciled=reconciled,
        )


def test_the_api_budget_one_expensive_reconcile_does_not_stretch_the_steady_cycles(settings):
    settings.SALESFORCE_SYNC_INTERVAL = 5.0
    settings.SALESFORCE_API_BUDGET = 0.5  # 50,000 calls a day
    _cycles(*[1] * 20, expensive={0: 5_000})
    # Averaging the reconcile in would give 86,400 * 251 / 50,000 ≈ 434 s between cycles.
    assert effective_interval() == 5.0


def test_the_api_budget_expensive_work_comes_off_the_steady_budget(settings):
    settings.SALESFORCE_SYNC_INTERVAL = 5.0
    settings.SALESFORCE_API_BUDGET = 0.5
    _cycles(*[1] * 20, expensive={3: 49_000})
    # 50,000 - 49,000 leaves less than a tenth; the steady cycles keep 5,000: 86,400 / 5,000.
    assert effective_interval() == pytest.approx(17.28)
    SyncCycle.objects.filter(reconciled=False).delete()
    _cycles(*[4] * 20)  # steady cycles that cost 4 calls each (their median counts)
    assert effective_interval() == pytest.approx(86_400 * 4 / 5_000)
