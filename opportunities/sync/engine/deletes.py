"""Deletes: getDeleted windows (whole minutes) ride in the cycle's Composite request; periodically,
or when getDeleted cannot cover the gap, or on request, an id reconciliation compares ids (hard
deletes, purges, rows that became visible) and refreshes formula values with it."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from ...models import SyncState
from ...salesforce.client import CompositeResult, deleted_from_body
from ...salesforce.exceptions import SalesforceRequestError
from ...salesforce.records import parse_datetime
from .. import apply, set_aside, wake
from ..fields import active_fields
from ..lock import SyncLock
from ..objects import SPECS
from .bookkeeping import ObjectWork, minute_floor
from .context import CycleRun
from .pages import outcomes_record, page_transaction, records_apply
from .queries import SALESFORCE_ID, ids_soql_chunks

logger = logging.getLogger(__name__)

ID_CHUNK_WRITE = 2000  # ids per statement when marking rows gone


def deleted_window(state: SyncState, org_now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The object's getDeleted window, when one is due: from where the last one ended (at most
    the 14 days Salesforce keeps) to the last whole minute, every SALESFORCE_DELETED_INTERVAL.
    getDeleted refuses a window of one minute or less (INVALID_REPLICATION_DATE): the
    minute-aligned window must span at least two minutes."""
    shortest = dt.timedelta(minutes=2)
    interval = max(dt.timedelta(seconds=settings.SALESFORCE_DELETED_INTERVAL), shortest)
    end = minute_floor(org_now)
    start = state.deleted_checked_until or end
    if end - start < interval:
        return None
    return max(start, end - dt.timedelta(days=14)), end


def deleted_apply(
    run: CycleRun, work: ObjectWork, result: CompositeResult, window: tuple[dt.datetime, dt.datetime]
) -> bool:
    """Apply getDeleted's answer; True when deletes were purged past our last check (the object
    needs a reconcile). A row changed after its deletion date was undeleted: it is kept."""
    state = work.state
    try:
        result.raise_for_error()
    except SalesforceRequestError as error:
        if error.error_code == "INVALID_REPLICATION_DATE":
            state.deleted_checked_until = window[1]
            return True
        raise
    deleted = deleted_from_body(result.body)
    when = {i: parse_datetime(d) for i, d in deleted.deleted}
    if when:
        stored = SPECS[work.sobject].stored_stamps(list(when))
        gone = {i: d for i, d in when.items() if i in stored and _not_after(stored[i], d)}
        rows_gone(run.lock, work.sobject, gone, work.context)  # each removal dated by its deletedDate
    covered = parse_datetime(deleted.latest_date_covered) if deleted.latest_date_covered else window[1]
    state.deleted_checked_until = max(covered, window[0])
    earliest = parse_datetime(deleted.earliest_date_available) if deleted.earliest_date_available else None
    return earliest is not None and earliest > window[0]


def rows_gone(
    lock: SyncLock, sobject: str, deleted_at: dict[str, dt.datetime], context: apply.ApplyContext
) -> None:
    """Rows gone from Salesforce, each with when it went (its deletedDate, or now when a
    reconcile found it missing)."""
    ids = list(deleted_at)
    # Bounded chunks, each its own fenced transaction: a reconcile that finds 100,000 rows
    # gone stays within SQLite's variable limit and never holds one giant write lock.
    for start in range(0, len(ids), ID_CHUNK_WRITE):
        chunk = {i: deleted_at[i] for i in ids[start : start + ID_CHUNK_WRITE]}
        with page_transaction(lock):  # coverage before the lease (see there)
            SPECS[sobject].mark_gone(chunk, context)


def hinted_gone(run: CycleRun, work: ObjectWork, ids: list[str]) -> None:
    """Ids of DELETE events (`wake.py`, hints): Salesforce is asked for those OppSync still holds
    as live, with queryAll, and the rows it no longer returns at all are gone now (a contact role
    deleted directly is a hard delete: no window and no getDeleted minute shows it sooner). A soft
    delete is still returned, with `IsDeleted`, and is the window's to apply; the event alone
    never removes anything."""
    sobject = work.sobject
    wanted = sorted(SPECS[sobject].live_among([i for i in ids if SALESFORCE_ID.fullmatch(i)]))
    if not wanted:
        return
    run.within_quota()
    remote: set[str] = set()
    try:
        for soql in ids_soql_chunks(run.client, sobject, {}, wanted):
            for records in run.client.query_all(soql, include_deleted=True):
                remote.update(str(r["Id"]) for r in records)
    except SalesforceRequestError as error:
        # A refusal of this check alone must not stop the object's sync: the ids wait for the
        # next cycle (and getDeleted and the reconcile find the deletes anyway).
        logger.warning(
            "Could not check %d deleted %s ids (%s); the next cycle tries again.", len(wanted), sobject, error
        )
        wake.gone_hints_add({sobject: wanted})
        return
    gone = [i for i in wanted if i not in remote]
    rows_gone(run.lock, sobject, dict.fromkeys(gone, timezone.now()), work.context)
    logger.info("Checked %d deleted %s ids of change events: %d gone", len(wanted), sobject, len(gone))


def reconcile_due(run: CycleRun, states: dict[str, SyncState], requested: set[str]) -> list[str]:
    """The objects to reconcile: those `requested` (the operator's, or getDeleted's gap) and those
    whose last reconcile is older than SALESFORCE_RECONCILE_INTERVAL; none that failed."""
    interval = dt.timedelta(seconds=settings.SALESFORCE_RECONCILE_INTERVAL)
    return [
        s
        for s, state in states.items()
        if s not in run.failures
        and (
            s in requested
            or (state.last_reconciled_at is not None and run.now - state.last_reconciled_at >= interval)
        )
    ]


def reconcile(run: CycleRun, work: ObjectWork) -> None:
    """Compare ids: local rows Salesforce no longer has are gone (hard deletes, purges, lost
    visibility); rows Salesforce has that OppSync lacks (sharing changes) are fetched."""
    sobject = work.sobject
    run.within_quota()
    remote: set[str] = set()
    for records in run.client.query_all(f"SELECT Id FROM {sobject}", include_deleted=False):
        remote.update(r["Id"] for r in records)
        run.lock.renew()
    live, known = SPECS[sobject].local_ids()
    found_missing = timezone.now()
    rows_gone(run.lock, sobject, dict.fromkeys(live - remote, found_missing), work.context)
    # Ids go into SOQL literals: only well-formed Salesforce ids get there. Set-aside records
    # are left to their retry by id: it applies them with the first load's flag when they were
    # set aside during it (this fetch has the cycle's live one: old news would fire triggers).
    waiting = set_aside.set_aside_ids(sobject)
    missing = sorted(i for i in remote - live - waiting if SALESFORCE_ID.fullmatch(i))
    fields = active_fields(sobject)
    work.context.force = True
    for soql in ids_soql_chunks(run.client, sobject, fields, missing):
        for records in run.client.query_all(soql):
            records_apply(run, work, records, fields, len(missing))
    work.context.force = False
    logger.info(
        "Reconciled %s: %d gone, %d fetched (%d known)", sobject, len(live - remote), len(missing), len(known)
    )


def formulas_refresh(run: CycleRun, work: ObjectWork) -> None:
    """Calculated fields change without a SystemModstamp bump, so no window brings them. With
    the (daily) reconcile, read only Id and those fields: at a million opportunities that is
    500 calls a day for Opportunity, none for an object without formula fields."""
    sobject = work.sobject
    fields = active_fields(sobject)
    formulas = sorted(name for name, info in fields.items() if info.calculated)
    if not formulas:
        return
    run.within_quota()
    soql = f"SELECT Id, SystemModstamp, {', '.join(formulas)} FROM {sobject}"
    detected_at = run.client.org_now()
    changed = 0
    for records in run.client.query_all(soql, include_deleted=False):
        with page_transaction(run.lock):  # coverage before the lease (see there)
            changed += SPECS[sobject].formulas_refresh(records, fields, work.context, detected_at)
            # A formula value that does not fit: that record is set aside (its retry re-reads it
            # whole); the rows this refresh did not change are no evidence either way.
            outcomes_record(run, work, [])
    logger.info("Refreshed %d formula fields of %s: %d rows changed", len(formulas), sobject, changed)


def _not_after(stamp: dt.datetime | None, moment: dt.datetime) -> bool:
    return stamp is None or stamp <= moment
