"""Apply: each page of records in one transaction, through its object's applier (`objects.SPECS`:
idempotent upserts, activities from the differences). A page that fails with an error of its own
is applied again record by record, and the records that still fail are set aside with their
reason (issue P11); an error that is no record's fault stops the object instead."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import transaction

from ...salesforce.client import QueryPage
from ...salesforce.records import FieldInfo
from ...totals import locked_coverage
from .. import set_aside
from ..apply.common import failure_reason
from ..lock import SyncLock
from ..objects import SPECS
from .bookkeeping import ObjectWork, progress_save
from .context import NOT_A_RECORDS_FAULT, CycleRun
from .queries import SALESFORCE_ID

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A page whose records all fail alone with one type of error (at least this many, none of them
# set aside already) is the code's or the schema's fault, not theirs: the object fails instead.
# Fewer is too small a sample: two bad records of a window are just two bad records.
ALL_ALIKE_MINIMUM = 10


def pages_apply(run: CycleRun, work: ObjectWork, page: QueryPage, fields: dict[str, FieldInfo]) -> None:
    """Apply each page while the next one downloads: the org's time and ours overlap."""
    for records in _prefetched(run.client.pages_from(page)):
        records_apply(run, work, records, fields, page.total_size)


def records_apply(
    run: CycleRun, work: ObjectWork, records: list[dict[str, Any]], fields: dict[str, FieldInfo], total: int
) -> None:
    """Apply a page of records (`fields`: the SELECT list they were read with) and tell the
    caller's progress callback; `total`: the records expected, saved as the run's progress."""
    if not records:
        return
    page_apply(
        run,
        work,
        records,
        lambda page: SPECS[work.sobject].applier(page, fields, work.context),
        applied_records=records,
        total=total,
    )
    if run.progress:
        run.progress(work.sobject, len(records), total)


def page_apply(
    run: CycleRun,
    work: ObjectWork,
    records: list[dict[str, Any]],
    apply_records: Callable[[list[dict[str, Any]]], Any],
    *,
    applied_records: list[dict[str, Any]],
    total: int | None,
) -> None:
    """`apply_records(records)` in one page transaction. A page that fails with an error of its
    own (a constraint, a value the database refuses, a bug one record trips) is rolled back and
    applied again record by record, each in a savepoint: the good ones commit, the bad ones are
    set aside with their reason. Errors of the database itself (connection, lock, timeout) or of
    the lease are no record's fault: they stop the object. `applied_records`: the records whose
    success clears a set-aside row; `total`: saved as progress (None: none)."""
    counters = work.context.counters
    before = counters.snapshot()
    try:
        with page_transaction(run.lock):
            apply_records(records)
            outcomes_record(run, work, applied_records)
            if total is not None:
                progress_save(work, total)
    except NOT_A_RECORDS_FAULT:
        raise
    except Exception as error:
        counters.restore(before)
        logger.warning(
            "%s: a page of %d records failed to apply (%s); applying them one by one",
            work.sobject,
            len(records),
            failure_reason(error),
        )
        with page_transaction(run.lock):
            _one_by_one(work, records, apply_records)
            outcomes_record(run, work, applied_records)
            if total is not None:
                progress_save(work, total)


@contextmanager
def page_transaction(lock: SyncLock) -> Iterator[None]:
    """A page's transaction: the totals coverage row first (FOR SHARE: it waits while a
    totals rebuild holds it), then the lease renewal (`fenced`). In the other order the page
    would wait for the rebuild holding the lease row (an UPDATE locks it until commit), and
    the heartbeat's renewal would wait behind it until the lease expired: SyncLeaseLost for
    a cycle that was only waiting. The applier's own `locked_coverage()` later in the
    transaction finds the lock already held."""
    with transaction.atomic():
        locked_coverage()
        with lock.fenced():
            yield


def _one_by_one(
    work: ObjectWork, records: list[dict[str, Any]], apply_records: Callable[[list[dict[str, Any]]], Any]
) -> None:
    """Within the caller's transaction, each record in a savepoint of its own: on PostgreSQL
    a failed statement aborts the whole transaction, and rolling back to the savepoint is
    what makes it usable again for the next record.

    When every record of the page (at least ALL_ALIKE_MINIMUM fresh ones) fails alone with the
    same type of error, the fault is not theirs (an applier bug, a schema the code does not
    match): the error is raised, the page's transaction rolls back, and the object fails and
    backs off with its watermark held, instead of every record of every page being set aside."""
    counters = work.context.counters
    page_before = counters.snapshot()
    errors: list[Exception] = []
    for record in records:
        before = counters.snapshot()
        try:
            with transaction.atomic():
                apply_records([record])
        except NOT_A_RECORDS_FAULT:
            raise
        except Exception as error:
            counters.restore(before)
            counters.fail(str(record.get("Id")), error)
            errors.append(error)
    if len(errors) == len(records) >= ALL_ALIKE_MINIMUM and len({type(e) for e in errors}) == 1:
        # Records already set aside (a retry by id, a reconcile fetching them) are known to
        # fail: only a page of fresh ones says the fault is the code's, not the records'.
        known = set_aside.set_aside_ids(work.sobject)
        if sum(1 for r in records if str(r.get("Id")) not in known) >= ALL_ALIKE_MINIMUM:
            counters.restore(page_before)
            raise errors[0]


def outcomes_record(run: CycleRun, work: ObjectWork, records: list[dict[str, Any]]) -> None:
    """In the page's transaction: its records set aside (by id) or, applied, no longer set aside."""
    sobject, counters = work.sobject, work.context.counters
    failed, counters.set_aside = counters.set_aside, {}
    for record_id in [i for i in failed if not SALESFORCE_ID.fullmatch(i)]:
        # Nothing to re-read it by: the log and the run's failed count are its trace.
        logger.warning(
            "%s: a record without a valid Id (%r) was dropped: %s", sobject, record_id, failed.pop(record_id)
        )
    if not failed and sobject not in run.set_aside_objects:
        return  # nothing of this object is set aside: no statement at all
    applied = [str(r["Id"]) for r in records if r.get("Id")]
    set_aside.record_outcomes(sobject, applied, failed)
    if failed:
        run.set_aside_objects.add(sobject)


def _prefetched(items: Iterator[T]) -> Iterator[T]:
    """Iterate while the next item is fetched in a thread: downloads overlap our writes."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="salesforce-prefetch") as pool:
        upcoming = pool.submit(next, items, None)
        while True:
            item = upcoming.result()
            if item is None:
                return
            upcoming = pool.submit(next, items, None)
            yield item
