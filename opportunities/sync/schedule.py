"""When sync cycles run and what they may spend: the interval stretched to the API budget, and
how far apart the host's clock and the org's may drift before anyone is told. Read by the engine,
the beat task, the status page and the API without importing the engine."""

from __future__ import annotations

import datetime as dt
import statistics

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from ..models import SyncCycle

CLOCK_SKEW_WARNING_SECONDS = 5.0


def sync_due(now: dt.datetime | None = None) -> bool:
    """Whether a beat tick should run a cycle now: the configured interval, stretched when it
    would spend more than `SALESFORCE_API_BUDGET` of the org's daily limit."""
    interval = effective_interval()
    configured = float(settings.SALESFORCE_SYNC_INTERVAL)
    if interval <= configured:
        return True  # beat's own spacing is the interval
    now = now or timezone.now()
    last = SyncCycle.objects.order_by("-started_at").first()
    # Half a beat of slack: a tick arrives a little after the previous cycle's start time.
    return last is None or now - last.started_at >= dt.timedelta(seconds=interval - configured / 2)


def effective_interval(now: dt.datetime | None = None) -> float:
    """Seconds between steady cycles so the day's calls stay within `SALESFORCE_API_BUDGET` of the
    org's daily limit.

    The expensive work (first loads, reconciles, back-fills: cycles marked initial or reconciled)
    is budgeted apart. A cycle is initial only when an object it read was in its first load: an
    object that never finishes one (Lead unreadable) does not make every steady cycle expensive.
    What the expensive work spent in the last 24 hours comes off the budget, and the steady
    cycles share the rest by their *median* cost, so one rare big cycle never stretches hours of
    cheap cycles that follow it."""
    interval = float(settings.SALESFORCE_SYNC_INTERVAL)
    now = now or timezone.now()
    recent = list(
        SyncCycle.objects.exclude(ended_at=None)
        .order_by("-started_at")
        .values("api_calls", "api_usage_max", "is_initial_load", "reconciled")[:20]
    )
    maximum = next((c["api_usage_max"] for c in recent if c["api_usage_max"]), None)
    if not maximum or settings.SALESFORCE_API_BUDGET <= 0:
        return interval
    steady = [c["api_calls"] for c in recent if not (c["is_initial_load"] or c["reconciled"])]
    steady_calls = max(1.0, float(statistics.median(steady))) if steady else 1.0
    expensive_calls = (
        SyncCycle.objects.filter(started_at__gte=now - dt.timedelta(days=1))
        .filter(Q(is_initial_load=True) | Q(reconciled=True))
        .aggregate(total=Sum("api_calls"))["total"]
        or 0
    )
    budget_per_day = settings.SALESFORCE_API_BUDGET * maximum
    # The steady cycles always keep a tenth of the budget, however much the expensive work took.
    steady_budget = max(budget_per_day - expensive_calls, budget_per_day / 10)
    return max(interval, 86400.0 * steady_calls / steady_budget)
