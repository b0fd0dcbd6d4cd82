"""When sync cycles run and what they may spend: the cadence (the safety poll while the change
stream is healthy, the sync interval otherwise), the interval stretched to the API budget, and
how far apart the host's clock and the org's may drift before anyone is told. Read by the engine,
the beat task, the status page and the API without importing the engine."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from ..models import ChangeListener, SyncCycle

CLOCK_SKEW_WARNING_SECONDS = 5.0


def sync_due(now: dt.datetime | None = None) -> bool:
    """Whether a beat tick should run a cycle now: the cadence's interval (the safety poll while
    the change stream is healthy, SALESFORCE_SYNC_INTERVAL otherwise), stretched when it would
    spend more than `SALESFORCE_API_BUDGET` of the org's daily limit. Any cycle counts, the ones
    change events caused included."""
    interval = effective_interval(now)
    configured = float(settings.SALESFORCE_SYNC_INTERVAL)
    if interval <= configured:
        return True  # beat's own spacing is the interval
    now = now or timezone.now()
    last = SyncCycle.objects.order_by("-started_at").first()
    # Half a beat of slack: a tick arrives a little after the previous cycle's start time.
    return last is None or now - last.started_at >= dt.timedelta(seconds=interval - configured / 2)


@dataclass(frozen=True)
class BudgetView:
    """What the API budget rests on: the org's daily limit (None until a cycle reported it), the
    median cost of a steady cycle, and what the expensive work spent in the last 24 hours."""

    maximum: int | None
    steady_calls: float
    expensive_calls: float

    @property
    def budget_per_day(self) -> float | None:
        if not self.maximum or settings.SALESFORCE_API_BUDGET <= 0:
            return None
        return settings.SALESFORCE_API_BUDGET * self.maximum


def budget_view(now: dt.datetime | None = None) -> BudgetView:
    """The expensive work (first loads, reconciles, back-fills: cycles marked initial or
    reconciled) is budgeted apart. A cycle is initial only when an object it read was in its first
    load: an object that never finishes one (Lead unreadable) does not make every steady cycle
    expensive. The steady cost is the *median*, so one rare big cycle never stretches hours of
    cheap cycles that follow it."""
    now = now or timezone.now()
    recent = list(
        SyncCycle.objects.exclude(ended_at=None)
        .order_by("-started_at")
        .values("api_calls", "api_usage_max", "is_initial_load", "reconciled")[:20]
    )
    maximum = next((c["api_usage_max"] for c in recent if c["api_usage_max"]), None)
    steady = [c["api_calls"] for c in recent if not (c["is_initial_load"] or c["reconciled"])]
    steady_calls = max(1.0, float(statistics.median(steady))) if steady else 1.0
    expensive_calls = (
        SyncCycle.objects.filter(started_at__gte=now - dt.timedelta(days=1))
        .filter(Q(is_initial_load=True) | Q(reconciled=True))
        .aggregate(total=Sum("api_calls"))["total"]
        or 0
    )
    return BudgetView(maximum=maximum, steady_calls=steady_calls, expensive_calls=float(expensive_calls))


def effective_interval(now: dt.datetime | None = None, *, base: float | None = None) -> float:
    """Seconds between polls so the day's calls stay within `SALESFORCE_API_BUDGET` of the org's
    daily limit: the cadence's interval (`base`, by default `poll_cadence()`), stretched when the
    steady cycles at that interval would spend more than the budget leaves them after the
    expensive work of the last 24 hours (they always keep a tenth of it)."""
    interval = float(base if base is not None else poll_cadence(now).seconds)
    view = budget_view(now)
    budget_per_day = view.budget_per_day
    if budget_per_day is None:
        return interval
    steady_budget = max(budget_per_day - view.expensive_calls, budget_per_day / 10)
    return max(interval, 86400.0 * view.steady_calls / steady_budget)


# --- the cadence: safety poll while the change stream is healthy ---------------------------------------
# A listener writes its row every few seconds; one not seen for this long has stopped.
LISTENER_STALE_SECONDS = 20.0


@dataclass(frozen=True)
class Cadence:
    """The poll interval before the budget's stretching, and why, in words."""

    seconds: float
    stream_healthy: bool
    reason: str


def stream_silence_limit() -> float:
    """How long a stream may stay silent (no event, no keepalive) before it counts as down."""
    return float(settings.SALESFORCE_CDC_KEEPALIVE_SECONDS + settings.SALESFORCE_CDC_KEEPALIVE_MARGIN_SECONDS)


def listener_running(listener: ChangeListener, now: dt.datetime) -> bool:
    """Seen lately and not stopped."""
    return listener.stopped_at is None and (now - listener.seen_at).total_seconds() <= LISTENER_STALE_SECONDS


def listener_healthy(listener: ChangeListener, now: dt.datetime, *, silence_limit: float) -> bool:
    """Subscribed, not down, seen lately, and heard from (an event or a keepalive, or the
    subscription itself) within the keepalive period plus its margin."""
    if listener.subscribed_since is None or listener.down_reason or not listener_running(listener, now):
        return False
    heard = max(
        t for t in (listener.subscribed_since, listener.last_event_at, listener.last_keepalive_at) if t
    )
    return (now - heard).total_seconds() <= silence_limit


def cadence_choice(
    *,
    cdc: str,
    listeners: list[ChangeListener],
    now: dt.datetime,
    sync_interval: float,
    safety_interval: float,
    silence_limit: float,
) -> Cadence:
    """The safety poll while some listener's stream is healthy; SALESFORCE_SYNC_INTERVAL otherwise,
    with the reason the stream is not (the freshest listener's)."""
    if cdc == "off":
        return Cadence(
            sync_interval, False, f"SALESFORCE_CDC is off: the sync polls every {sync_interval:g} s."
        )
    if any(listener_healthy(listener, now, silence_limit=silence_limit) for listener in listeners):
        # The stream never makes the polls more frequent than SALESFORCE_SYNC_INTERVAL asks.
        safety_interval = max(safety_interval, sync_interval)
        return Cadence(
            safety_interval,
            True,
            f"The change stream is healthy: change events wake the sync, and a safety poll runs every "
            f"{safety_interval:g} s.",
        )
    fresh = [lst for lst in listeners if listener_running(lst, now)]
    if not fresh:
        why = "no change listener is running (python manage.py salesforce_listen)"
    elif fresh[0].down_reason:
        why = f"the change stream is down: {fresh[0].down_reason.rstrip('.')}"
    elif fresh[0].subscribed_since is None:
        why = "the change listener is subscribing"
    else:
        why = "the change stream has been silent longer than its keepalive period"
    return Cadence(sync_interval, False, f"Polling every {sync_interval:g} s: {why}.")


def poll_cadence(now: dt.datetime | None = None) -> Cadence:
    now = now or timezone.now()
    listeners = (
        list(
            ChangeListener.objects.filter(
                seen_at__gte=now - dt.timedelta(seconds=LISTENER_STALE_SECONDS), stopped_at=None
            )
        )
        if settings.SALESFORCE_CDC != "off"
        else []
    )
    return cadence_choice(
        cdc=settings.SALESFORCE_CDC,
        listeners=listeners,
        now=now,
        sync_interval=float(settings.SALESFORCE_SYNC_INTERVAL),
        safety_interval=float(settings.SALESFORCE_SAFETY_POLL_INTERVAL),
        silence_limit=stream_silence_limit(),
    )
