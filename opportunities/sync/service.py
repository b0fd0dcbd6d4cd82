"""Entry points of the sync for tasks and commands: one client per process (its token is reused
until Salesforce says it expired), one cycle at a time."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from ..models import CycleTrigger, SyncCycle, SyncStatus
from ..salesforce.auth import SalesforceConfig
from ..salesforce.client import SalesforceClient
from .engine import Progress, SyncEngine
from .schedule import sync_due
from .wake import WakeClaim, wake_pending, wake_request

_clients: dict[SalesforceConfig, SalesforceClient] = {}


def salesforce_client() -> SalesforceClient:
    config = SalesforceConfig.from_settings()
    if config not in _clients:
        _clients.clear()
        _clients[config] = SalesforceClient(config, backoff_seconds=settings.SALESFORCE_RETRY_BACKOFF)
    return _clients[config]


def sync_configured() -> bool:
    return SalesforceConfig.from_settings().configured


def sync_cycle_run(
    *,
    reconcile: bool = False,
    progress: Progress | None = None,
    only_when_due: bool = False,
    always_describe: bool = False,
    trigger: str = CycleTrigger.OPERATOR,
) -> SyncCycle | None:
    """Run one cycle now. With `only_when_due`, a beat tick that comes before the (budget-stretched)
    interval has passed does nothing; `always_describe` describes every object unconditionally.
    The cycle serves every change-event wake-up that came before it."""
    if only_when_due and not sync_due():
        return None
    engine = SyncEngine(salesforce_client(), progress=progress)
    return engine.run_cycle(
        reconcile=reconcile, always_describe=always_describe, trigger=trigger, claim=WakeClaim(trigger)
    )


def sync_wake_run() -> WakeClaim:
    """Run the cycles change events asked for: while a wake-up is pending (one came after the start
    of the last cycle), one more cycle, each within the wake-up budget. Returns the last claim:
    `outcome` "served" when nothing is pending, "budget" with `retry_in` when the budget has no
    token now, "" when another cycle holds the lease (that cycle's end follows up).

    At most `WAKE_CYCLES_PER_TASK` cycles: an org busy enough to keep a wake-up always pending
    (or an unknown budget) must not keep one task running into the worker's hard time limit; a
    wake-up still pending afterwards is the listener's next tick's, or the beat's."""
    for _ in range(WAKE_CYCLES_PER_TASK):
        claim = WakeClaim(CycleTrigger.WAKE)
        cycle = SyncEngine(salesforce_client()).run_cycle(trigger=CycleTrigger.WAKE, claim=claim)
        if cycle is None:
            # A wake-up that came just after this claim found nothing pending saw the lease still
            # held and was not queued (the running cycle was to follow up): look once more.
            if claim.outcome == "served" and wake_pending():
                continue
            break
        if cycle.status == SyncStatus.FAILED:
            # The wake-up was served by a cycle that failed (Salesforce unavailable, the lease
            # lost): it is asked for again, for the listener's next nudge (1, 2, 4 … 30 s apart,
            # within the wake-up budget), not in this task's loop.
            wake_request()
            break
    return claim


WAKE_CYCLES_PER_TASK = 20


def sync_history_prune() -> int:
    """Delete cycle records (and their per-object runs) older than `SYNC_HISTORY_DAYS`; the
    activities they recorded stay. Returns how many cycles went."""
    cutoff = timezone.now() - dt.timedelta(days=settings.SYNC_HISTORY_DAYS)
    _, by_model = SyncCycle.objects.filter(started_at__lt=cutoff).exclude(status=SyncStatus.RUNNING).delete()
    return int(by_model.get(SyncCycle._meta.label, 0))
