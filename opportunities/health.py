"""Reads for the sync status page: where each object stands, what the API costs, whether workers
are alive, the last error in plain words, a first load's progress, and the last day in charts."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.safestring import SafeString

from oppsync_site.charts import Series, line_chart
from oppsync_site.models import WorkerHeartbeat

from .models import Activity, SetAsideRecord, SyncCycle, SyncObjectRun, SyncState, SyncStatus
from .selectors import ChangeStreamStatus, change_stream_status
from .sync.objects import SYNCED_OBJECTS
from .sync.schedule import CLOCK_SKEW_WARNING_SECONDS
from .sync.set_aside import set_aside_listing

CHART_HOURS = 24
LATENCY_BUCKET_MINUTES = 15
# Enough recent activities for honest percentiles without reading a busy day's every row.
LATENCY_SAMPLE = 20_000
# Records set aside shown on the page (all of them are counted); the API lists more.
SET_ASIDE_SHOWN = 50


@dataclass
class ObjectHealth:
    sobject: str
    state: SyncState | None
    last_run: SyncObjectRun | None

    @property
    def backlog(self) -> int:
        return self.last_run.backlog if self.last_run else 0


@dataclass
class FirstLoadProgress:
    sobject: str
    done: int
    total: int
    per_second: float
    eta_seconds: float | None

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0


@dataclass
class LastError:
    at: dt.datetime
    headline: str
    detail: str
    resolved: bool


@dataclass
class SyncHealth:
    configured: bool
    objects: list[ObjectHealth]
    last_cycle: SyncCycle | None
    org_api_used: int | None
    org_api_max: int | None
    sync_calls_24h: int
    sync_budget: int | None
    interval_seconds: float
    heartbeat: WorkerHeartbeat | None
    heartbeat_age: float | None
    warnings: list[str]
    last_error: LastError | None
    first_load: list[FirstLoadProgress]
    # Records the sync could not store, retried by id until they apply (the longest waiting first).
    set_aside: list[SetAsideRecord] = field(default_factory=list)
    set_aside_count: int = 0
    charts: dict[str, SafeString] = field(default_factory=dict)
    # The change-event wake-up (P15) and the poll cadence it sets.
    stream: ChangeStreamStatus | None = None

    @property
    def org_api_percent(self) -> float | None:
        if not self.org_api_max or self.org_api_used is None:
            return None
        return 100.0 * self.org_api_used / self.org_api_max

    @property
    def sync_budget_percent(self) -> float | None:
        return 100.0 * self.sync_calls_24h / self.sync_budget if self.sync_budget else None


# Plain words for what the sync's errors mean to a person, by the exception text or code in them.
_HEADLINES = [
    ("Paused:", "Paused to protect the org's daily API limit"),
    ("REQUEST_LIMIT_EXCEEDED", "Salesforce's daily API limit is used up"),
    ("INVALID_SESSION_ID", "Salesforce ended the session; OppSync logs in again by itself"),
    ("invalid_client", "Salesforce refused the integration user's credentials"),
    ("invalid_grant", "Salesforce refused the integration user's credentials"),
    ("authentication", "Salesforce refused the integration user's credentials"),
    ("QUERY_TIMEOUT", "Salesforce took too long to answer a query"),
    ("times out", "Salesforce took too long to answer a query"),
    ("connect", "Salesforce could not be reached; the sync keeps trying"),
    ("timed out", "Salesforce did not answer in time; the sync keeps trying"),
    ("Abandoned", "A worker stopped in the middle of a cycle; the next cycle picked up the work"),
    ("Internal error", "OppSync hit an unexpected error; the worker log has the details"),
]


def error_headline(message: str) -> str:
    lowered = message.lower()
    for needle, headline in _HEADLINES:
        if needle.lower() in lowered:
            return headline
    return "The last sync cycle failed"


def _last_error(latest: SyncCycle | None) -> LastError | None:
    failed = (
        SyncCycle.objects.filter(status__in=[SyncStatus.FAILED, SyncStatus.PAUSED])
        .exclude(error_message="")
        .order_by("-started_at", "-id")
        .first()
    )
    record_errors = (
        SyncObjectRun.objects.exclude(error_message="")
        .filter(failed_count__gt=0)
        .order_by("-started_at", "-id")
        .first()
    )
    candidates = []
    if failed is not None:
        candidates.append(
            LastError(
                at=failed.ended_at or failed.started_at,
                headline=error_headline(failed.error_message),
                detail=failed.error_message,
                resolved=latest is not None
                and latest.status == SyncStatus.SUCCEEDED
                and latest.started_at > failed.started_at,
            )
        )
    if record_errors is not None:
        candidates.append(
            LastError(
                at=record_errors.ended_at or record_errors.started_at,
                headline=f"{record_errors.failed_count} {record_errors.sobject} record(s) could not be stored",
                detail=record_errors.error_message,
                resolved=False,
            )
        )
    return max(candidates, key=lambda e: e.at, default=None)


def _first_load(now: dt.datetime) -> list[FirstLoadProgress]:
    # The runs in their object's first load: a cycle that loads one object for the first time
    # reads the others live, and those are no first load's progress.
    runs = SyncObjectRun.objects.filter(
        status=SyncStatus.RUNNING, is_initial_load=True, cycle__status=SyncStatus.RUNNING
    ).order_by("sobject")
    progress = []
    for run in runs:
        done, total = run.processed_count, run.expected_count or 0
        elapsed = max((now - run.started_at).total_seconds(), 0.001)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 and total > done else None
        progress.append(FirstLoadProgress(run.sobject, done, max(total, done), rate, eta))
    return progress


def _minute_buckets(now: dt.datetime) -> list[dt.datetime]:
    end = timezone.localtime(now).replace(second=0, microsecond=0)
    return [end - dt.timedelta(minutes=m) for m in range(CHART_HOURS * 60 - 1, -1, -1)]


def _x_labels(buckets: list[dt.datetime]) -> list[str]:
    """A label every six hours of local time, blank elsewhere."""
    return [
        b.strftime("%H:%M") if b.minute == 0 and b.hour % 6 == 0 else ""
        for b in (timezone.localtime(b) for b in buckets)
    ]


def _per_minute(rows: list[dict[str, Any]], buckets: list[dt.datetime]) -> list[float | None]:
    by_minute = {timezone.localtime(r["minute"]).replace(second=0, microsecond=0): r["value"] for r in rows}
    return [float(by_minute.get(b, 0) or 0) for b in buckets]


def _charts(now: dt.datetime) -> dict[str, SafeString]:
    since = now - dt.timedelta(hours=CHART_HOURS)
    buckets = _minute_buckets(now)
    labels = _x_labels(buckets)
    cycles = list(
        SyncCycle.objects.filter(started_at__gte=since)
        .annotate(minute=TruncMinute("started_at"))
        .values("minute")
        .annotate(value=Count("id"))
        .order_by()
    )
    records = list(
        SyncObjectRun.objects.filter(started_at__gte=since)
        .annotate(minute=TruncMinute("started_at"))
        .values("minute")
        .annotate(value=Sum(F("created_count") + F("updated_count") + F("deleted_count")))
        .order_by()
    )
    # Change-to-visible latency: Salesforce's SystemModstamp of a change (the activity's
    # occurred_at) to the moment OppSync committed it (recorded_at). The first load is left out.
    samples = (
        Activity.objects.filter(recorded_at__gte=since, is_initial_load=False)
        .order_by("-recorded_at")
        .values_list("recorded_at", "occurred_at")[:LATENCY_SAMPLE]
    )
    width = dt.timedelta(minutes=LATENCY_BUCKET_MINUTES)
    count = CHART_HOURS * 60 // LATENCY_BUCKET_MINUTES
    start = buckets[-1] + dt.timedelta(minutes=1) - width * count
    latencies: list[list[float]] = [[] for _ in range(count)]
    for recorded, occurred in samples:
        index = int((recorded - start) / width)
        if 0 <= index < count:
            latencies[index].append(max(0.0, (recorded - occurred).total_seconds()))
    p50 = [statistics.median(v) if v else None for v in latencies]
    p95 = [
        statistics.quantiles(v, n=20, method="inclusive")[18] if len(v) > 1 else (v[0] if v else None)
        for v in latencies
    ]
    latency_labels = [
        t.strftime("%H:%M") if t.minute == 0 and t.hour % 6 == 0 else ""
        for t in (timezone.localtime(start + width * i) for i in range(count))
    ]
    return {
        "cycles": line_chart(
            [Series("cycles", _per_minute(cycles, buckets))], x_labels=labels, title="Sync cycles per minute"
        ),
        "records": line_chart(
            [Series("records", _per_minute(records, buckets))],
            x_labels=labels,
            title="Records applied per minute",
        ),
        "latency": line_chart(
            [Series("p50", p50), Series("p95", p95, css="os-line-2")],
            x_labels=latency_labels,
            title="Change-to-visible latency in seconds, p50 and p95",
            unit="s",
        ),
    }


def sync_health(*, with_charts: bool = True) -> SyncHealth:
    """Everything the sync status page shows, in a fixed number of queries."""
    now = timezone.now()
    states = {s.sobject: s for s in SyncState.objects.all()}
    objects = [
        ObjectHealth(
            sobject=sobject,
            state=states.get(sobject),
            last_run=SyncObjectRun.objects.filter(sobject=sobject).order_by("-started_at", "-id").first(),
        )
        for sobject in SYNCED_OBJECTS
    ]
    latest = SyncCycle.objects.order_by("-started_at", "-id").first()
    with_usage = SyncCycle.objects.exclude(api_usage_max=None).order_by("-started_at", "-id").first()
    org_used = with_usage.api_usage_used if with_usage else None
    org_max = with_usage.api_usage_max if with_usage else None
    calls = (
        SyncCycle.objects.filter(started_at__gte=now - dt.timedelta(hours=24)).aggregate(n=Sum("api_calls"))[
            "n"
        ]
        or 0
    )
    budget = int(settings.SALESFORCE_API_BUDGET * org_max) if org_max else None
    heartbeat = WorkerHeartbeat.objects.order_by("-last_beat_at").first()
    heartbeat_age = (now - heartbeat.last_beat_at).total_seconds() if heartbeat else None
    configured = bool(settings.SALESFORCE_CLIENT_ID)
    stream = change_stream_status(now)
    interval = stream.interval_seconds

    warnings = []
    if heartbeat_age is None:
        warnings.append("No Celery worker has ever reported: start a worker and beat (make run does both).")
    elif heartbeat_age > 3 * settings.CELERY_HEARTBEAT_INTERVAL:
        warnings.append(
            f"No worker heartbeat for {_duration(heartbeat_age)}: the Celery worker or beat is not running."
        )
    if not configured:
        warnings.append(
            "No Salesforce credentials are configured, so the sync is off (see SALESFORCE_CLIENT_ID)."
        )
    elif latest is not None:
        since_cycle = (now - latest.started_at).total_seconds()
        if since_cycle > max(120.0, 6 * interval) and latest.status != SyncStatus.RUNNING:
            warnings.append(f"No sync cycle has started for {_duration(since_cycle)}: is beat running?")
    skew = latest.clock_skew_seconds if latest is not None else None
    if skew is not None and abs(skew) > CLOCK_SKEW_WARNING_SECONDS:
        warnings.append(
            f"This server's clock is {_duration(abs(skew))} {'ahead of' if skew > 0 else 'behind'} "
            "Salesforce's. The sync follows Salesforce's clock, but set up NTP on this host: "
            "times shown here come from it."
        )
    percent = 100.0 * org_used / org_max if org_max and org_used is not None else None
    if percent is not None and percent >= 100 * settings.SALESFORCE_QUOTA_PAUSE:
        warnings.append(
            f"The org has used {percent:.0f}% of its daily API calls; the sync pauses above "
            f"{settings.SALESFORCE_QUOTA_PAUSE:.0%}."
        )
    set_aside, set_aside_count = set_aside_listing(SET_ASIDE_SHOWN)
    return SyncHealth(
        configured=configured,
        objects=objects,
        last_cycle=latest,
        org_api_used=org_used,
        org_api_max=org_max,
        sync_calls_24h=int(calls),
        sync_budget=budget,
        interval_seconds=interval,
        heartbeat=heartbeat,
        heartbeat_age=heartbeat_age,
        warnings=warnings,
        last_error=_last_error(latest),
        first_load=_first_load(now),
        set_aside=set_aside,
        set_aside_count=set_aside_count,
        charts=_charts(now) if with_charts else {},
        stream=stream,
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"
