"""Bookkeeping: whose turn it is, each object's run (its counts, as the status page shows them
while the cycle runs) and state (failures and their backoff, first load done, last reconcile),
and the cycle's outcome."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.utils import timezone

from ...models import SyncCycle, SyncObjectRun, SyncState, SyncStatus
from ...salesforce.exceptions import SalesforceError
from .. import apply
from ..apply.common import failure_reason
from ..objects import SYNCED_OBJECTS
from .context import STOPS_THE_CYCLE, CycleRun

logger = logging.getLogger(__name__)

# A failing object's wait before its next try, doubling with each failure in a row.
BACKOFF_FIRST = dt.timedelta(minutes=1)
BACKOFF_LONGEST = dt.timedelta(hours=1)


def minute_floor(value: dt.datetime) -> dt.datetime:
    return value.replace(second=0, microsecond=0)


def objects_due(now: dt.datetime) -> dict[str, SyncState]:
    """The states of the objects whose turn it is, in contract order: an object that failed
    recently waits for its retry time, the others go on without it. An object's first cycle
    creates its state row."""
    states = {}
    for sobject in SYNCED_OBJECTS:
        states[sobject], _ = SyncState.objects.get_or_create(
            sobject=sobject, defaults={"deleted_checked_until": minute_floor(now)}
        )
    return {s: state for s, state in states.items() if _retry_due(state.retry_after, now)}


def first_load_mark(cycle: SyncCycle, states: dict[str, SyncState]) -> None:
    """The cycle is a first load's when an object it goes on to read is in its first load (the
    status page's progress, the budget's expensive cycles): not while one waits on a failure."""
    first_load = any(state.initial_load_completed_at is None for state in states.values())
    if first_load != cycle.is_initial_load:
        cycle.is_initial_load = first_load
        cycle.save(update_fields=["is_initial_load"])


def cycle_outcome(failures: dict[str, str]) -> tuple[str, str]:
    """(status, error message) of a cycle that ran to its end: the objects that did not sync say
    why; it failed only when none did."""
    if not failures:
        return SyncStatus.SUCCEEDED, ""
    message = "; ".join(failures.values())[:4000]
    return (SyncStatus.FAILED if len(failures) == len(SYNCED_OBJECTS) else SyncStatus.SUCCEEDED), message


@dataclass
class ObjectWork:
    """One object's turn in the cycle: its state row, its run row, the context its pages are
    applied with (the counts, the first-load flag) and the client's call count when it began."""

    sobject: str
    state: SyncState
    run: SyncObjectRun
    context: apply.ApplyContext
    calls_before: int


def object_start(
    run: CycleRun,
    sobject: str,
    state: SyncState,
    window: tuple[dt.datetime, dt.datetime] | None,
    initial: bool,
) -> ObjectWork:
    """`initial`: the object is in its first load (its activities are recorded as such: triggers
    never fire for them)."""
    object_run = SyncObjectRun.objects.create(
        cycle=run.cycle,
        sobject=sobject,
        started_at=timezone.now(),
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
        is_initial_load=initial,
    )
    context = apply.ApplyContext(cycle=run.cycle, is_initial_load=initial, counters=apply.Counters())
    return ObjectWork(sobject, state, object_run, context, calls_before=run.client.calls)


def progress_save(work: ObjectWork, total: int) -> None:
    """Counts so far, page by page, so the status page shows a first load's progress and the
    backlog while the cycle runs (one small UPDATE per page)."""
    object_run = work.run
    if total:
        object_run.expected_count = max(object_run.expected_count or 0, total)
    SyncObjectRun.objects.filter(pk=object_run.pk).update(
        expected_count=object_run.expected_count, **_counts(work.context.counters)
    )


def object_finish(run: CycleRun, work: ObjectWork, *, status: str = SyncStatus.SUCCEEDED) -> None:
    counters, object_run = work.context.counters, work.run
    for column, count in _counts(counters).items():
        setattr(object_run, column, count)
    object_run.api_calls = run.client.calls - work.calls_before
    if status == SyncStatus.SUCCEEDED:
        object_run.error_message = "; ".join(counters.errors)
    object_run.status = status
    object_run.ended_at = timezone.now()
    object_run.save()


def _counts(counters: apply.Counters) -> dict[str, int]:
    """The run's count columns, from the object's counters."""
    kinds = ("created", "updated", "deleted", "skipped", "failed")
    return {f"{kind}_count": getattr(counters, kind) for kind in kinds}


def object_synced(run: CycleRun, work: ObjectWork) -> None:
    """The object's window (and what came with it) is done: a first load is complete, a failure
    streak ends."""
    state = work.state
    if state.initial_load_completed_at is None:
        state.initial_load_completed_at = timezone.now()
        state.last_reconciled_at = run.now  # a first load reads everything there is
    state.failure_count, state.retry_after, state.last_error = 0, None, ""
    with run.lock.fenced():
        state.save()
    object_finish(run, work)


def object_reconciled(run: CycleRun, work: ObjectWork) -> None:
    work.state.last_reconciled_at = run.now
    with run.lock.fenced():
        work.state.save(update_fields=["last_reconciled_at"])
    object_finish(run, work)


@contextmanager
def object_isolated(run: CycleRun, sobject: str, state: SyncState, work: ObjectWork | None) -> Iterator[None]:
    """One object's work: a Salesforce error, or an unexpected one (a database error outside
    any record's page), is that object's failure (`run.failures`), not the cycle's; a spent
    quota still pauses the whole cycle, a lost lease or the soft time limit stops it."""
    try:
        yield
    except STOPS_THE_CYCLE:
        raise
    except SalesforceError as error:
        _object_failed(run, sobject, state, work, str(error))
    except Exception as error:
        logger.exception("%s failed with an unexpected error", sobject)
        _object_failed(
            run,
            sobject,
            state,
            work,
            f"Internal error ({failure_reason(error)}); details are in the worker log.",
        )


def _object_failed(
    run: CycleRun, sobject: str, state: SyncState, work: ObjectWork | None, error: str
) -> None:
    """This object failed: it waits, doubling the wait each time in a row (1 min up to 1 h),
    and the status page says why; the cycle goes on with the other objects."""
    state.failure_count += 1
    wait = min(BACKOFF_FIRST * 2 ** (state.failure_count - 1), BACKOFF_LONGEST)
    state.retry_after = run.now + wait
    state.last_error = error
    run.failures[sobject] = f"{sobject}: {error}"
    logger.warning("%s failed (%s); next try after %s", sobject, error, state.retry_after)
    with run.lock.fenced():
        state.save(update_fields=["failure_count", "retry_after", "last_error"])
    if work is not None:
        work.run.error_message = error[:2000]
        object_finish(run, work, status=SyncStatus.FAILED)


def _retry_due(retry_after: dt.datetime | None, now: dt.datetime) -> bool:
    return retry_after is None or retry_after <= now
