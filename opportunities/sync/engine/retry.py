"""The retry of set-aside records: re-read by id when their retry has come, and applied."""

from __future__ import annotations

import logging

from ...salesforce.exceptions import SalesforceError
from .. import set_aside
from ..fields import active_fields
from .bookkeeping import ObjectWork
from .context import STOPS_THE_CYCLE, CycleRun
from .pages import records_apply
from .queries import SALESFORCE_ID, ids_soql_chunks

logger = logging.getLogger(__name__)


def set_aside_retry(run: CycleRun, work: ObjectWork, ids: list[str]) -> None:
    """Re-read the set-aside records whose retry has come, by id, and apply them (a window may
    have applied some meanwhile: those are not asked for). Equal SystemModstamps are applied
    again (`force`): the stored row may be an older version than the one that failed. A record
    set aside during its object's first load records first-load activities, as it would have
    then (no trigger fires for old news). What Salesforce no longer returns is forgotten, with
    a log line."""
    sobject = work.sobject
    pending = set_aside.still_set_aside(sobject, ids, since=run.now)
    loaded_at = work.state.initial_load_completed_at
    groups = {
        first_load: sorted(
            i
            for i, failed_at in pending.items()
            if SALESFORCE_ID.fullmatch(i) and (loaded_at is None or failed_at <= loaded_at) == first_load
        )
        for first_load in (True, False)
    }
    wanted = groups[True] + groups[False]
    if not wanted:
        return
    run.within_quota()
    fields = active_fields(sobject)
    found: set[str] = set()
    context = work.context
    live = context.is_initial_load
    context.force = True
    try:
        for first_load, group in groups.items():
            context.is_initial_load = live or first_load
            for soql in ids_soql_chunks(run.client, sobject, fields, group):
                for records in run.client.query_all(soql):
                    found.update(str(r.get("Id")) for r in records)
                    records_apply(run, work, records, fields, 0)
    except STOPS_THE_CYCLE:
        raise
    except SalesforceError as error:
        # The retry is extra work after the window committed: Salesforce refusing it (a
        # timeout, a 5xx, a URI too long) must not fail the object, which would skip its
        # back-fill and deletes and, in a first load, keep it from ever completing. The
        # records not read stay set aside for a later cycle.
        waiting = sorted(set(wanted) - found)
        logger.warning(
            "%s: the retry of %d set-aside records failed (%s); they are tried again later",
            sobject,
            len(waiting),
            error,
        )
        with run.lock.fenced():
            set_aside.postpone(sobject, waiting)
        return
    finally:
        context.force, context.is_initial_load = False, live
    with run.lock.fenced():
        set_aside.forget_missing(sobject, set(wanted) - found)
    logger.info("%s: retried %d set-aside records, %d returned", sobject, len(wanted), len(found))
