"""Window: one object's window read and applied. Its first page came in the cycle's Composite
request; pages beyond it follow `nextRecordsUrl`; a first load above SALESFORCE_BULK_THRESHOLD
rows goes through a Bulk API 2.0 queryAll job instead; a QUERY_TIMEOUT halves the window; an
INVALID_FIELD describes the object again. The watermark moves to the window's upper bound only
after the whole window committed."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from ...salesforce.client import CompositeResult, QueryPage, page_from_body
from ...salesforce.exceptions import SalesforceInvalidField, SalesforceQueryTimeout, SalesforceRequestError
from ...salesforce.records import FieldInfo
from ..fields import active_fields, relationship_paths
from .bookkeeping import ObjectWork
from .composite import Window
from .context import CycleRun
from .describe import backfill, describe_again
from .pages import pages_apply, records_apply
from .queries import window_soql

logger = logging.getLogger(__name__)

PAGE_SIZE = 2000  # rows of a Bulk result applied per page transaction


def read(
    run: CycleRun, work: ObjectWork, first: CompositeResult, window: Window, fields: dict[str, FieldInfo]
) -> None:
    """Read one window, given its first answer. `fields` is the SELECT list the Composite query
    was built with; the records it returns carry those fields, so they are applied with it."""
    sobject = work.sobject
    try:
        first.raise_for_error()
        page = page_from_body(first.body)
    except SalesforceInvalidField as error:
        # A field vanished (field-level security, a deleted custom field): describe and retry.
        logger.info("%s: %s; describing again", sobject, error)
        appeared = describe_again(run, work)
        if appeared:
            backfill(run, work, appeared)
        fields = active_fields(sobject)
        try:
            page, fields = _query_without_unreadable_paths(run, work, fields, window)
        except SalesforceQueryTimeout:
            _split_window(run, work, window)
            return
    except SalesforceQueryTimeout:
        _split_window(run, work, window)
        return
    _readable_again(run, work, fields)
    try:
        _window_rows(run, work, page, fields, window)
    except SalesforceQueryTimeout:
        # The Bulk job, its REST fallback or a later page timed out: too wide a window for
        # the org. Halves commit their watermarks, so a retry never starts from the beginning.
        logger.info("%s: the window %s to %s timed out; reading it in halves", sobject, *window)
        _split_window(run, work, window)
        return
    _watermark_save(run, work, window[1])


def _watermark_save(run: CycleRun, work: ObjectWork, upper: dt.datetime) -> None:
    work.state.watermark = upper
    with run.lock.fenced():
        work.state.save(update_fields=["watermark"])


def _window_rows(
    run: CycleRun, work: ObjectWork, page: QueryPage, fields: dict[str, FieldInfo], window: Window
) -> None:
    """Apply a window's rows, given its first REST page: through a Bulk API 2.0 job when a
    first load finds more than SALESFORCE_BULK_THRESHOLD of them, else page by page. A
    QUERY_TIMEOUT goes to the caller, which splits the window."""
    if work.state.initial_load_completed_at is None and page.total_size > settings.SALESFORCE_BULK_THRESHOLD:
        _bulk_window(run, work, fields, window, page.total_size)
    else:
        pages_apply(run, work, page, fields)


def _query_without_unreadable_paths(
    run: CycleRun, work: ObjectWork, fields: dict[str, FieldInfo], window: Window
) -> tuple[QueryPage, dict[str, FieldInfo]]:
    """The window's query after describing again. Describe cannot show that the user may not
    read a parent object (`Account.Name` through a visible `AccountId`): if the query still
    fails on a relationship path, that path is left out and remembered, so the object keeps
    syncing without it instead of failing every cycle (P7 point 2)."""
    sobject, state = work.sobject, work.state
    try:
        return run.client.query(window_soql(sobject, fields, *window)), fields
    except SalesforceInvalidField as error:
        paths = [p for p in relationship_paths(sobject) if p in fields]
        reason = str(error)
        named = [p for p in paths if f"'{p.split('.', 1)[0]}'" in reason]
        dropped = named or paths
        if not dropped:
            raise
        readable = {name: info for name, info in fields.items() if name not in dropped}
        page = run.client.query(window_soql(sobject, readable, *window))
    logger.warning(
        "%s: the integration user cannot read %s (%s); syncing without it", sobject, dropped, reason
    )
    found_at = timezone.now().isoformat()
    state.unreadable_paths = {**state.unreadable_paths, **dict.fromkeys(dropped, found_at)}
    with run.lock.fenced():
        state.save(update_fields=["unreadable_paths"])
    return page, readable


def _readable_again(run: CycleRun, work: ObjectWork, fields: dict[str, FieldInfo]) -> None:
    """A path that was unreadable was read again (its daily retry worked): forget it, and
    back-fill its values, which did not arrive while it was left out."""
    state = work.state
    again = [path for path in state.unreadable_paths if path in fields]
    if not again:
        return
    state.unreadable_paths = {p: at for p, at in state.unreadable_paths.items() if p not in again}
    with run.lock.fenced():
        state.save(update_fields=["unreadable_paths"])
    logger.info("%s: %s readable again; back-filling", work.sobject, again)
    backfill(run, work, again)


def _split_window(run: CycleRun, work: ObjectWork, window: Window) -> None:
    """QUERY_TIMEOUT: read the window in halves, committing the watermark after each half. Each
    half is read as a window is (a first load's large half through Bulk, `_window_rows`); a
    half whose query, Bulk job or REST fallback times out is halved again."""
    sobject, (lower, upper) = work.sobject, window
    if upper - lower < dt.timedelta(minutes=1):
        raise SalesforceQueryTimeout(
            f"{sobject}: Salesforce times out even on a one-minute window ({lower:%Y-%m-%d %H:%M})."
        )
    middle = lower + (upper - lower) / 2
    for half in ((lower, middle), (middle, upper)):
        fields = active_fields(sobject)
        try:
            page = run.client.query(window_soql(sobject, fields, *half))
            _window_rows(run, work, page, fields, half)
        except SalesforceQueryTimeout:
            # Called from the handler: its own "even a one-minute window" error goes up to
            # the object's failure instead of being split again by every level above.
            _split_window(run, work, half)
        _watermark_save(run, work, half[1])


def _bulk_window(
    run: CycleRun, work: ObjectWork, fields: dict[str, FieldInfo], window: Window, total: int
) -> None:
    """A large first load's window through a Bulk API 2.0 queryAll job (CSV pages), its query
    without ORDER BY (`window_soql`). A QUERY_TIMEOUT, of the job or of the REST fallback,
    goes to the caller, which splits the window."""
    sobject = work.sobject
    run.within_quota()
    try:
        for rows in run.client.bulk_query(sobject, window_soql(sobject, fields, *window, ordered=False)):
            for start in range(0, len(rows), PAGE_SIZE):
                records_apply(run, work, [dict(r) for r in rows[start : start + PAGE_SIZE]], fields, total)
            run.within_quota()  # before the next result page is downloaded
    except SalesforceRequestError as error:
        # Bulk refused (compound fields, daily job limit): REST pages do the same work.
        logger.warning("%s: Bulk API refused (%s); paging through REST instead", sobject, error)
        for records in run.client.query_all(window_soql(sobject, fields, *window)):
            records_apply(run, work, records, fields, total)
