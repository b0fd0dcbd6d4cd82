"""What every phase of a cycle is handed (`CycleRun`), the quota rule, and the errors that decide
whose failure a failure is."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, InternalError, NotSupportedError, OperationalError, ProgrammingError
from django.utils import timezone

from ...models import SyncCycle, SyncStatus
from ...salesforce.client import SalesforceClient
from ...salesforce.exceptions import SalesforceError, SalesforceQuotaExceeded
from ..lock import SyncLeaseLost, SyncLock

# (object, records applied, records expected): the operator command's progress bar.
Progress = Callable[[str, int, int], None]
LIMITS_REFRESH = dt.timedelta(minutes=5)
# Errors that are no record's fault: the database unreachable, locked or timing out, its schema
# behind the code (migrate not run: ProgrammingError), broken (InternalError) or lacking a feature
# (NotSupportedError), the lease lost, Salesforce failing, the task's soft time limit reached. They
# stop the object (or the cycle), never set a record aside: set aside, every record of every page
# would go by the watermark and need a retry by id each.
NOT_A_RECORDS_FAULT = (
    OperationalError,
    InterfaceError,
    ProgrammingError,
    InternalError,
    NotSupportedError,
    SyncLeaseLost,
    SalesforceError,
    SoftTimeLimitExceeded,
)
# Errors that stop the whole cycle wherever they happen (no object's failure): the quota spent
# pauses it, a lost lease or the soft time limit ends it (the worker is about to be killed: the
# cycle must end FAILED and release the lease now, not carry on to the hard limit).
STOPS_THE_CYCLE = (SalesforceQuotaExceeded, SyncLeaseLost, SoftTimeLimitExceeded)


@dataclass
class CycleRun:
    """One cycle, as its phases see it: the Salesforce client, the lease every write is fenced by
    (`lock.fenced()`), the cycle's record and the moment its phases started, the caller's progress
    callback; and what a phase learns that later ones read: the objects that failed (with why,
    `bookkeeping.object_isolated`) and the objects with records set aside. `always_describe`:
    describes carry no If-Modified-Since (the operator's command)."""

    client: SalesforceClient
    lock: SyncLock
    cycle: SyncCycle
    now: dt.datetime
    progress: Progress | None = None
    always_describe: bool = False
    failures: dict[str, str] = field(default_factory=dict)
    # Only these objects' pages clear set-aside rows (one statement fewer per page for the others).
    set_aside_objects: set[str] = field(default_factory=set)

    def within_quota(self) -> None:
        within_quota(self.client)


def within_quota(client: SalesforceClient) -> None:
    """Within a cycle: long reads (first loads, back-fills, reconciles, Bulk jobs) stop at the
    pause threshold and resume in a later cycle (watermarks move only when a window is done, and
    re-read pages are skipped by their SystemModstamp)."""
    usage = client.api_usage
    if over_pause(usage):
        assert usage is not None
        raise SalesforceQuotaExceeded(
            f"Paused mid-cycle: {_usage_words(usage)}; the rest is read when the quota allows."
        )


def quota_guard(client: SalesforceClient) -> None:
    """Before a cycle: above SALESFORCE_QUOTA_PAUSE of the org's daily limit it pauses."""
    usage = client.api_usage
    if usage is None:
        last = SyncCycle.objects.exclude(api_usage_max=None).order_by("-started_at").first()
        usage = (last.api_usage_used or 0, last.api_usage_max or 0) if last else None
    if not over_pause(usage):
        return
    last_paused = SyncCycle.objects.filter(status=SyncStatus.PAUSED).order_by("-started_at").first()
    if last_paused is None or timezone.now() - last_paused.started_at > LIMITS_REFRESH:
        # The daily limit rolls: look again now and then, with one cheap call.
        limits = client.limits().get("DailyApiRequests", {})
        usage = (int(limits.get("Max", 0)) - int(limits.get("Remaining", 0)), int(limits.get("Max", 0)))
        client.api_usage = usage
        if not over_pause(usage):
            return
    assert usage is not None
    raise SalesforceQuotaExceeded(f"Paused: {_usage_words(usage)}.")


def over_pause(usage: tuple[int, int] | None) -> bool:
    """Whether the org's daily API use is at or above SALESFORCE_QUOTA_PAUSE."""
    return bool(usage and usage[1] and usage[0] / usage[1] >= settings.SALESFORCE_QUOTA_PAUSE)


def _usage_words(usage: tuple[int, int]) -> str:
    return (
        f"the org has used {usage[0]:,} of its {usage[1]:,} daily API calls ({usage[0] / usage[1]:.0%}), "
        f"above SALESFORCE_QUOTA_PAUSE ({settings.SALESFORCE_QUOTA_PAUSE:.0%})"
    )
