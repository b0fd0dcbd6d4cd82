"""The sync cycle: Salesforce to OppSync in seconds, with nothing lost (salesforce-api.md §4.6).

A cycle, under a lock so only one runs anywhere:

1. Quota guard: above `SALESFORCE_QUOTA_PAUSE` of the org's daily limit the cycle pauses.
2. Fields: on the first cycle describe every object; after that describe rides along in the cycle's
   Composite request about once a minute, and at once when a query reports INVALID_FIELD.
3. One Composite request (one API call) carries, per object in the order Contact, Lead,
   Opportunity, OpportunityContactRole, the window query
   `SystemModstamp > watermark - lookback AND SystemModstamp <= now` on queryAll, plus the due
   describes and getDeleted windows (whole minutes). An idle cycle costs exactly that one call.
4. Pages beyond the first follow `nextRecordsUrl`; an initial load above `SALESFORCE_BULK_THRESHOLD`
   rows goes through a Bulk API 2.0 queryAll job instead; a QUERY_TIMEOUT halves the window.
   Each page is applied in one transaction (idempotent upserts, activities from the differences);
   the watermark moves to the window's upper bound only after the whole window committed.
5. Fields that appeared are back-filled for existing rows; getDeleted and, periodically or on
   request, an id reconciliation find hard deletes (and rows that became visible).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import (
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    transaction,
)
from django.utils import timezone

from ..models import (
    Activity,
    FieldDefinition,
    SyncCycle,
    SyncObjectRun,
    SyncState,
    SyncStatus,
)
from ..salesforce.client import (
    CompositeResult,
    QueryPage,
    SalesforceClient,
    deleted_from_body,
    description_from_body,
    page_from_body,
)
from ..salesforce.exceptions import (
    SalesforceError,
    SalesforceInvalidField,
    SalesforceQueryTimeout,
    SalesforceQuotaExceeded,
    SalesforceRequestError,
)
from ..salesforce.records import FieldInfo, parse_datetime, soql_datetime
from ..signals import activities_recorded
from ..totals import locked_coverage
from . import apply, set_aside
from .apply.common import failure_reason
from .fields import active_fields, field_definitions_sync, relationship_paths, select_list
from .lock import SyncLeaseLost, SyncLock
from .objects import SPECS, SYNCED_OBJECTS
from .schedule import CLOCK_SKEW_WARNING_SECONDS

logger = logging.getLogger(__name__)

T = TypeVar("T")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15,18}")
PAGE_SIZE = 2000
ID_CHUNK_WRITE = 2000  # ids per statement when marking rows gone
# Ids per `Id IN (...)` query (reconcile's fetch, the retry of set-aside records); fewer when the
# select list is wide, so the query's URL stays under Salesforce's URI limit (`ids_soql_chunks`).
IDS_PER_QUERY = 200
# The whole URI plus headers must stay under 16,384 bytes or Salesforce answers 414 URI Too Long
# (salesforce-api.md §2); the rest is left for the headers and the instance's host name.
URI_BUDGET = 12_000
LIMITS_REFRESH = dt.timedelta(minutes=5)
# A failing object's wait before its next try, doubling with each failure in a row.
# A page whose records all fail alone with one type of error (at least this many, none of them
# set aside already) is the code's or the schema's fault, not theirs: the object fails instead.
# Fewer is too small a sample: two bad records of a window are just two bad records.
ALL_ALIKE_MINIMUM = 10
BACKOFF_FIRST = dt.timedelta(minutes=1)
BACKOFF_LONGEST = dt.timedelta(hours=1)

Progress = Callable[[str, int, int], None]
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


def ids_soql_chunks(
    client: SalesforceClient, sobject: str, fields: dict[str, FieldInfo], ids: list[str]
) -> Iterator[str]:
    """`SELECT <fields> FROM sobject WHERE Id IN (...)` over `ids`, as few queries as the URI limit
    allows (at most IDS_PER_QUERY ids each): 200 quoted ids plus a wide select list would pass the
    16,384 bytes Salesforce accepts. Ids must be well-formed (`SALESFORCE_ID`): they go into
    literals."""
    head = f"SELECT {', '.join(select_list(sobject, fields))} FROM {sobject} WHERE Id IN ()"
    per_id = len(client.query_url("'001000000000000AAA', ")) - len(client.query_url(""))
    room = URI_BUDGET - len(client.query_url(head))
    size = max(1, min(IDS_PER_QUERY, room // per_id))
    for start in range(0, len(ids), size):
        quoted = ", ".join(f"'{i}'" for i in ids[start : start + size])
        yield head[:-1] + quoted + ")"


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """Iterate while the next item is fetched in a thread: downloads overlap our writes."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="salesforce-prefetch") as pool:
        upcoming = pool.submit(next, items, None)
        while True:
            item = upcoming.result()
            if item is None:
                return
            upcoming = pool.submit(next, items, None)
            yield item


def _older_than(moment: dt.datetime | None, now: dt.datetime, age: dt.timedelta) -> bool:
    return moment is None or now - moment >= age


def minute_floor(value: dt.datetime) -> dt.datetime:
    return value.replace(second=0, microsecond=0)


def window_soql(
    sobject: str,
    fields: dict[str, FieldInfo],
    lower: dt.datetime,
    upper: dt.datetime,
    *,
    ordered: bool = True,
) -> str:
    """The query of one window. REST reads it in SystemModstamp order (ties by Id); a Bulk API
    2.0 job (`ordered=False`) gets no ORDER BY: Bulk 2.0 does not support it and it turns PK
    chunking off, so exactly the big first loads that use Bulk would run slow and time out
    (Bulk API 2.0 Developer Guide, "Understanding Bulk API 2.0 Query" and "Troubleshooting Query
    Timeouts"). The order does not matter for correctness: the watermark moves only after the
    whole window is applied, and each row is applied by its own SystemModstamp."""
    order = " ORDER BY SystemModstamp ASC, Id ASC" if ordered else ""
    return (
        f"SELECT {', '.join(select_list(sobject, fields))} FROM {sobject} "
        f"WHERE SystemModstamp > {soql_datetime(lower)} AND SystemModstamp <= {soql_datetime(upper)}"
        f"{order}"
    )


@dataclass
class ObjectProgress:
    run: SyncObjectRun
    context: apply.ApplyContext
    calls_before: int


class SyncEngine:
    def __init__(self, client: SalesforceClient, *, progress: Progress | None = None) -> None:
        self.client = client
        self.progress = progress
        self.lock = SyncLock()
        self.failures: dict[str, str] = {}
        # Objects with records set aside: only their pages clear set-aside rows.
        self.set_aside_objects: set[str] = set()
        self.lookback = dt.timedelta(seconds=settings.SALESFORCE_LOOKBACK_SECONDS)

    # --- the cycle --------------------------------------------------------------------------------
    def run_cycle(self, *, reconcile: bool = False) -> SyncCycle | None:
        """Run one cycle; None when another cycle holds the lock."""
        if not self.lock.acquire():
            logger.info("Another sync cycle is running; this one stands down.")
            return None
        cycle = SyncCycle.objects.create(started_at=timezone.now())
        # Holding the lock means no other cycle runs: one still marked running died with its worker.
        SyncCycle.objects.filter(status=SyncStatus.RUNNING).exclude(pk=cycle.pk).update(
            status=SyncStatus.FAILED, error_message="Abandoned: the worker running this cycle stopped."
        )
        calls_before = self.client.calls
        self.client.before_next_page = self._within_quota
        try:
            self._quota_guard()
            self._cycle(cycle, reconcile=reconcile)
            cycle.status = SyncStatus.SUCCEEDED
            if self.failures:
                # The others synced; the cycle says which objects did not and why.
                cycle.error_message = "; ".join(self.failures.values())[:4000]
                if len(self.failures) == len(SYNCED_OBJECTS):
                    cycle.status = SyncStatus.FAILED
        except SalesforceQuotaExceeded as error:
            cycle.status, cycle.error_message = SyncStatus.PAUSED, str(error)
        except SyncLeaseLost as error:
            cycle.status, cycle.error_message = SyncStatus.FAILED, str(error)
            logger.warning("Sync cycle %s stopped: %s", cycle.pk, error)
        except SoftTimeLimitExceeded:
            # The hard limit kills the worker soon: end FAILED now, releasing the lease, instead of
            # leaving the lease held and the runs RUNNING. The watermarks of what committed hold.
            cycle.status = SyncStatus.FAILED
            cycle.error_message = (
                "Stopped at the task's soft time limit (CELERY_TASK_SOFT_TIME_LIMIT); what was "
                "applied is kept and the next cycle carries on from there."
            )
            logger.warning("Sync cycle %s stopped at the soft time limit", cycle.pk)
        except SalesforceError as error:
            cycle.status, cycle.error_message = SyncStatus.FAILED, str(error)
            logger.warning("Sync cycle %s failed: %s", cycle.pk, error)
        except Exception as error:
            cycle.status = SyncStatus.FAILED
            cycle.error_message = (
                f"Internal error ({type(error).__name__}: {error}); details are in the worker log."
            )
            logger.exception("Sync cycle %s failed", cycle.pk)
        finally:
            self.client.before_next_page = None
            cycle.ended_at = timezone.now()
            cycle.api_calls = self.client.calls - calls_before
            if self.client.api_usage:
                cycle.api_usage_used, cycle.api_usage_max = self.client.api_usage
            cycle.save()
            SyncObjectRun.objects.filter(cycle=cycle, status=SyncStatus.RUNNING).update(
                status=cycle.status, ended_at=cycle.ended_at, error_message=cycle.error_message[:2000]
            )
            self.lock.release()
        if Activity.objects.filter(sync_cycle=cycle, is_initial_load=False).exists():
            activities_recorded.send(sender=type(self), cycle=cycle)
        return cycle

    def _within_quota(self) -> None:
        """Within a cycle: long reads (first loads, back-fills, reconciles, Bulk jobs) stop at the
        pause threshold and resume in a later cycle (watermarks move only when a window is
        done, and re-read pages are skipped by their SystemModstamp)."""
        usage = self.client.api_usage
        if _over_pause(usage):
            assert usage is not None
            raise SalesforceQuotaExceeded(
                f"Paused mid-cycle: {_usage_words(usage)}; the rest is read when the quota allows."
            )

    def _quota_guard(self) -> None:
        usage = self.client.api_usage
        if usage is None:
            last = SyncCycle.objects.exclude(api_usage_max=None).order_by("-started_at").first()
            usage = (last.api_usage_used or 0, last.api_usage_max or 0) if last else None
        if not _over_pause(usage):
            return
        last_paused = SyncCycle.objects.filter(status=SyncStatus.PAUSED).order_by("-started_at").first()
        if last_paused is None or timezone.now() - last_paused.started_at > LIMITS_REFRESH:
            # The daily limit rolls: look again now and then, with one cheap call.
            limits = self.client.limits().get("DailyApiRequests", {})
            usage = (int(limits.get("Max", 0)) - int(limits.get("Remaining", 0)), int(limits.get("Max", 0)))
            self.client.api_usage = usage
            if not _over_pause(usage):
                return
        assert usage is not None
        raise SalesforceQuotaExceeded(f"Paused: {_usage_words(usage)}.")

    def _cycle(self, cycle: SyncCycle, *, reconcile: bool) -> None:
        now = timezone.now()
        states = {}
        for sobject in SYNCED_OBJECTS:
            states[sobject], _ = SyncState.objects.get_or_create(
                sobject=sobject, defaults={"deleted_checked_until": minute_floor(now)}
            )
        # "Initial" is per object: an object in its first load records its activities as such
        # (triggers never fire for them); the others record live ones, even while one object
        # (say Lead, unreadable) never finishes its first load.
        initial = {s: state.initial_load_completed_at is None for s, state in states.items()}
        # Objects that failed recently wait for their retry time; the others go on without them.
        objects = [s for s in SYNCED_OBJECTS if _retry_due(states[s].retry_after, now)]
        self.failures = {}
        self.set_aside_objects = set_aside.objects_with_set_aside()

        described = set(
            FieldDefinition.objects.filter(is_active=True).values_list("sobject", flat=True).distinct()
        )
        unknown = [s for s in objects if s not in described]
        backfills: dict[str, list[str]] = {}
        if unknown:
            results = self.client.composite([(f"describe_{s}", self.client.describe_url(s)) for s in unknown])
            for sobject in unknown:
                with self._isolated(sobject, states[sobject], None, now):
                    self._describe_result(
                        sobject, results[f"describe_{sobject}"], states[sobject], now, backfills
                    )
        objects = [s for s in objects if s not in self.failures]
        # The cycle is a first load's when an object it goes on to read is in its first load (the
        # status page's progress, the budget's expensive cycles): not while one waits on a failure.
        first_load = any(initial[s] for s in objects)
        if first_load != cycle.is_initial_load:
            cycle.is_initial_load = first_load
            cycle.save(update_fields=["is_initial_load"])

        describe_interval = dt.timedelta(seconds=settings.SALESFORCE_DESCRIBE_INTERVAL)
        describe_due = [
            s
            for s in objects
            if s not in unknown and _older_than(states[s].last_describe_at, now, describe_interval)
        ]
        # Windows follow the org's clock, not ours: a host clock running ahead would otherwise set
        # watermarks in the org's future and skip what commits meanwhile. The upper bound leads
        # the org's time a little (the Date header has whole seconds); late commits below it are
        # caught by the next window's lookback.
        org_now = self.client.org_now()
        self._record_clock_skew(cycle, now, org_now)
        upper = org_now + dt.timedelta(seconds=settings.SALESFORCE_CLOCK_LEAD_SECONDS)
        windows = {s: (self._lower_bound(states[s]), upper) for s in objects}
        fields = {s: active_fields(s) for s in objects}
        # Composite referenceIds may hold letters, digits and underscores only (REST API guide,
        # "Composite Subrequest Result"); what an org does with others depends on its release.
        subrequests = [(f"describe_{s}", self.client.describe_url(s)) for s in describe_due]
        subrequests += [
            (f"query_{s}", self.client.query_url(window_soql(s, fields[s], *windows[s]))) for s in objects
        ]
        deleted_windows = self._deleted_windows({s: states[s] for s in objects}, org_now)
        subrequests += [
            (f"deleted_{s}", self.client.deleted_url(s, start.isoformat(), end.isoformat()))
            for s, (start, end) in deleted_windows.items()
        ]
        results = self.client.composite(subrequests) if objects else {}
        for sobject in describe_due:
            with self._isolated(sobject, states[sobject], None, now):
                self._describe_result(
                    sobject, results[f"describe_{sobject}"], states[sobject], now, backfills
                )

        # Only the object whose deletes Salesforce could not list is reconciled for it: a refusal
        # for Lead never re-reads two million roles.
        needs_reconcile = set(SYNCED_OBJECTS) if reconcile else set()
        for sobject in objects:
            if sobject in self.failures:
                continue
            progress = self._start_object(cycle, sobject, windows[sobject], initial[sobject])
            state = states[sobject]
            retry_ids = set_aside.due_ids(sobject, now) if sobject in self.set_aside_objects else []
            with self._isolated(sobject, state, progress, now):
                self._window(
                    sobject, results[f"query_{sobject}"], windows[sobject], fields[sobject], state, progress
                )
                if retry_ids:
                    self._retry_set_aside(sobject, retry_ids, state, progress, now)
                if backfills.get(sobject):
                    self._backfill(sobject, backfills[sobject], progress)
                if sobject in deleted_windows and self._deleted_result(
                    sobject, results[f"deleted_{sobject}"], deleted_windows[sobject], state, progress
                ):
                    needs_reconcile.add(sobject)
            if sobject in self.failures:
                continue
            if state.initial_load_completed_at is None:
                state.initial_load_completed_at = timezone.now()
                state.last_reconciled_at = now  # a first load reads everything there is
            state.failure_count, state.retry_after, state.last_error = 0, None, ""
            with self.lock.fenced():
                state.save()
            self._finish_object(progress)

        reconcile_interval = dt.timedelta(seconds=settings.SALESFORCE_RECONCILE_INTERVAL)
        due = [
            s
            for s in objects
            if s not in self.failures
            and (
                s in needs_reconcile
                or (
                    states[s].last_reconciled_at is not None
                    and _older_than(states[s].last_reconciled_at, now, reconcile_interval)
                )
            )
        ]
        if due:
            cycle.reconciled = True
            cycle.save(update_fields=["reconciled"])
        for sobject in due:
            # The first load may have completed earlier in this cycle: the state says.
            progress = self._start_object(
                cycle, sobject, None, states[sobject].initial_load_completed_at is None
            )
            with self._isolated(sobject, states[sobject], progress, now):
                self._reconcile(sobject, progress)
                self._refresh_formulas(sobject, progress)
            if sobject in self.failures:
                continue
            states[sobject].last_reconciled_at = now
            with self.lock.fenced():
                states[sobject].save(update_fields=["last_reconciled_at"])
            self._finish_object(progress)

    def _record_clock_skew(self, cycle: SyncCycle, now: dt.datetime, org_now: dt.datetime) -> None:
        skew = (now - org_now).total_seconds()
        cycle.clock_skew_seconds = round(skew, 1)  # saved with the cycle's outcome
        if abs(skew) > CLOCK_SKEW_WARNING_SECONDS:
            logger.warning(
                "This host's clock is %.0f s %s Salesforce's; sync windows follow Salesforce's clock",
                abs(skew),
                "ahead of" if skew > 0 else "behind",
            )

    @contextmanager
    def _isolated(
        self, sobject: str, state: SyncState, progress: ObjectProgress | None, now: dt.datetime
    ) -> Iterator[None]:
        """One object's work: a Salesforce error, or an unexpected one (a database error outside
        any record's page), is that object's failure (`self.failures`), not the cycle's; a spent
        quota still pauses the whole cycle, a lost lease or the soft time limit stops it."""
        try:
            yield
        except STOPS_THE_CYCLE:
            raise
        except SalesforceError as error:
            self._object_failed(sobject, state, progress, str(error), now)
        except Exception as error:
            logger.exception("%s failed with an unexpected error", sobject)
            self._object_failed(
                sobject,
                state,
                progress,
                f"Internal error ({failure_reason(error)}); details are in the worker log.",
                now,
            )

    def _object_failed(
        self,
        sobject: str,
        state: SyncState,
        progress: ObjectProgress | None,
        error: str,
        now: dt.datetime,
    ) -> None:
        """This object failed: it waits, doubling the wait each time in a row (1 min up to 1 h),
        and the status page says why; the cycle goes on with the other objects."""
        state.failure_count += 1
        wait = min(BACKOFF_FIRST * 2 ** (state.failure_count - 1), BACKOFF_LONGEST)
        state.retry_after = now + wait
        state.last_error = error
        self.failures[sobject] = f"{sobject}: {error}"
        logger.warning("%s failed (%s); next try after %s", sobject, error, state.retry_after)
        with self.lock.fenced():
            state.save(update_fields=["failure_count", "retry_after", "last_error"])
        if progress is not None:
            progress.run.error_message = error[:2000]
            self._finish_object(progress, status=SyncStatus.FAILED)

    def _lower_bound(self, state: SyncState) -> dt.datetime:
        """A lookback before the watermark catches rows that committed late with an older stamp."""
        return state.watermark - self.lookback if state.watermark is not None else EPOCH

    # --- describe ---------------------------------------------------------------------------------
    def _describe_result(
        self,
        sobject: str,
        result: CompositeResult,
        state: SyncState,
        now: dt.datetime,
        backfills: dict[str, list[str]],
    ) -> None:
        result.raise_for_error()
        with self.lock.fenced():
            appeared = field_definitions_sync(description_from_body(sobject, result.body), now=now)
            state.last_describe_at = now
            state.save(update_fields=["last_describe_at"])
        if appeared and state.watermark is not None:
            backfills[sobject] = appeared

    def _describe_now(self, sobject: str, state: SyncState) -> list[str]:
        description = self.client.describe(sobject)
        with self.lock.fenced():
            appeared = field_definitions_sync(description, now=timezone.now())
            state.last_describe_at = timezone.now()
            state.save(update_fields=["last_describe_at"])
        return appeared

    # --- windows ----------------------------------------------------------------------------------
    def _window(
        self,
        sobject: str,
        first: CompositeResult,
        window: tuple[dt.datetime, dt.datetime],
        fields: dict[str, FieldInfo],
        state: SyncState,
        progress: ObjectProgress,
    ) -> None:
        """Read one window. `fields` is the SELECT list the composite query was built with; the
        records it returns carry those fields, so they are applied with it."""
        lower, upper = window
        try:
            first.raise_for_error()
            page = page_from_body(first.body)
        except SalesforceInvalidField as error:
            # A field vanished (field-level security, a deleted custom field): describe and retry.
            logger.info("%s: %s; describing again", sobject, error)
            appeared = self._describe_now(sobject, state)
            if appeared and state.watermark is not None:
                self._backfill(sobject, appeared, progress)
            fields = active_fields(sobject)
            try:
                page, fields = self._query_without_unreadable_paths(sobject, fields, window, state)
            except SalesforceQueryTimeout:
                self._split_window(sobject, lower, upper, state, progress)
                return
        except SalesforceQueryTimeout:
            self._split_window(sobject, lower, upper, state, progress)
            return
        self._readable_again(sobject, fields, state, progress)
        try:
            self._window_rows(sobject, page, fields, lower, upper, state, progress)
        except SalesforceQueryTimeout:
            # The Bulk job, its REST fallback or a later page timed out: too wide a window for
            # the org. Halves commit their watermarks, so a retry never starts from the beginning.
            logger.info("%s: the window %s to %s timed out; reading it in halves", sobject, lower, upper)
            self._split_window(sobject, lower, upper, state, progress)
            return
        state.watermark = upper
        with self.lock.fenced():
            state.save(update_fields=["watermark"])

    def _window_rows(
        self,
        sobject: str,
        page: QueryPage,
        fields: dict[str, FieldInfo],
        lower: dt.datetime,
        upper: dt.datetime,
        state: SyncState,
        progress: ObjectProgress,
    ) -> None:
        """Apply a window's rows, given its first REST page: through a Bulk API 2.0 job when a
        first load finds more than SALESFORCE_BULK_THRESHOLD of them, else page by page. A
        QUERY_TIMEOUT goes to the caller, which splits the window."""
        if state.initial_load_completed_at is None and page.total_size > settings.SALESFORCE_BULK_THRESHOLD:
            self._bulk_window(sobject, fields, lower, upper, page.total_size, progress)
        else:
            self._apply_pages(sobject, page, fields, progress)

    def _query_without_unreadable_paths(
        self,
        sobject: str,
        fields: dict[str, FieldInfo],
        window: tuple[dt.datetime, dt.datetime],
        state: SyncState,
    ) -> tuple[QueryPage, dict[str, FieldInfo]]:
        """The window's query after describing again. Describe cannot show that the user may not
        read a parent object (`Account.Name` through a visible `AccountId`): if the query still
        fails on a relationship path, that path is left out and remembered, so the object keeps
        syncing without it instead of failing every cycle (P7 point 2)."""
        lower, upper = window
        try:
            return self.client.query(window_soql(sobject, fields, lower, upper)), fields
        except SalesforceInvalidField as error:
            paths = [p for p in relationship_paths(sobject) if p in fields]
            reason = str(error)
            named = [p for p in paths if f"'{p.split('.', 1)[0]}'" in reason]
            dropped = named or paths
            if not dropped:
                raise
            readable = {name: info for name, info in fields.items() if name not in dropped}
            page = self.client.query(window_soql(sobject, readable, lower, upper))
        logger.warning(
            "%s: the integration user cannot read %s (%s); syncing without it", sobject, dropped, reason
        )
        found_at = timezone.now().isoformat()
        state.unreadable_paths = {**state.unreadable_paths, **dict.fromkeys(dropped, found_at)}
        with self.lock.fenced():
            state.save(update_fields=["unreadable_paths"])
        return page, readable

    def _readable_again(
        self, sobject: str, fields: dict[str, FieldInfo], state: SyncState, progress: ObjectProgress
    ) -> None:
        """A path that was unreadable was read again (its daily retry worked): forget it, and
        back-fill its values, which did not arrive while it was left out."""
        again = [path for path in state.unreadable_paths if path in fields]
        if not again:
            return
        state.unreadable_paths = {p: at for p, at in state.unreadable_paths.items() if p not in again}
        with self.lock.fenced():
            state.save(update_fields=["unreadable_paths"])
        logger.info("%s: %s readable again; back-filling", sobject, again)
        self._backfill(sobject, again, progress)

    def _apply_pages(
        self, sobject: str, page: QueryPage, fields: dict[str, FieldInfo], progress: ObjectProgress
    ) -> None:
        """Apply each page while the next one downloads: the org's time and ours overlap."""
        for records in prefetched(self.client.pages_from(page)):
            self._apply(sobject, records, fields, progress, page.total_size)

    def _split_window(
        self, sobject: str, lower: dt.datetime, upper: dt.datetime, state: SyncState, progress: ObjectProgress
    ) -> None:
        """QUERY_TIMEOUT: read the window in halves, committing the watermark after each half. Each
        half is read as a window is (a first load's large half through Bulk, `_window_rows`); a
        half whose query, Bulk job or REST fallback times out is halved again."""
        if upper - lower < dt.timedelta(minutes=1):
            raise SalesforceQueryTimeout(
                f"{sobject}: Salesforce times out even on a one-minute window ({lower:%Y-%m-%d %H:%M})."
            )
        middle = lower + (upper - lower) / 2
        for part_lower, part_upper in ((lower, middle), (middle, upper)):
            fields = active_fields(sobject)
            try:
                page = self.client.query(window_soql(sobject, fields, part_lower, part_upper))
                self._window_rows(sobject, page, fields, part_lower, part_upper, state, progress)
            except SalesforceQueryTimeout:
                # Called from the handler: its own "even a one-minute window" error goes up to
                # the object's failure instead of being split again by every level above.
                self._split_window(sobject, part_lower, part_upper, state, progress)
            state.watermark = part_upper
            with self.lock.fenced():
                state.save(update_fields=["watermark"])

    def _bulk_window(
        self,
        sobject: str,
        fields: dict[str, FieldInfo],
        lower: dt.datetime,
        upper: dt.datetime,
        total: int,
        progress: ObjectProgress,
    ) -> None:
        """A large first load's window through a Bulk API 2.0 queryAll job (CSV pages), its query
        without ORDER BY (`window_soql`). A QUERY_TIMEOUT, of the job or of the REST fallback,
        goes to the caller, which splits the window."""
        self._within_quota()
        try:
            for rows in self.client.bulk_query(
                sobject, window_soql(sobject, fields, lower, upper, ordered=False)
            ):
                for start in range(0, len(rows), PAGE_SIZE):
                    self._apply(
                        sobject, [dict(r) for r in rows[start : start + PAGE_SIZE]], fields, progress, total
                    )
                self._within_quota()  # before the next result page is downloaded
        except SalesforceRequestError as error:
            # Bulk refused (compound fields, daily job limit): REST pages do the same work.
            logger.warning("%s: Bulk API refused (%s); paging through REST instead", sobject, error)
            for records in self.client.query_all(window_soql(sobject, fields, lower, upper)):
                self._apply(sobject, records, fields, progress, total)

    def _apply(
        self,
        sobject: str,
        records: list[dict[str, Any]],
        fields: dict[str, FieldInfo],
        progress: ObjectProgress,
        total: int,
    ) -> None:
        """Apply a page in one transaction. A page that fails with an error of its own (a
        constraint, a value the database refuses, a bug one record trips) is rolled back and
        applied again record by record, each in a savepoint: the good ones commit, the bad ones
        are set aside with their reason (issue P11). Errors of the database itself (connection,
        lock, timeout) or of the lease are no record's fault: they stop the object."""
        if records:
            self._apply_page(
                sobject,
                records,
                progress,
                lambda page: SPECS[sobject].applier(page, fields, progress.context),
                applied_records=records,
                total=total,
            )
        if self.progress and records:
            self.progress(sobject, len(records), total)

    def _apply_page(
        self,
        sobject: str,
        records: list[dict[str, Any]],
        progress: ObjectProgress,
        apply_records: Callable[[list[dict[str, Any]]], Any],
        *,
        applied_records: list[dict[str, Any]],
        total: int | None,
    ) -> None:
        """`apply_records(records)` in one page transaction; if it fails with an error of its own,
        rolled back and applied again record by record (`_apply_one_by_one`). `applied_records`: the
        records whose success clears a set-aside row; `total`: saved as progress (None: none)."""
        counters = progress.context.counters
        before = counters.snapshot()
        try:
            with self._page_transaction():
                apply_records(records)
                self._record_outcomes(sobject, applied_records, progress)
                if total is not None:
                    self._save_progress(progress, total)
        except NOT_A_RECORDS_FAULT:
            raise
        except Exception as error:
            counters.restore(before)
            logger.warning(
                "%s: a page of %d records failed to apply (%s); applying them one by one",
                sobject,
                len(records),
                failure_reason(error),
            )
            with self._page_transaction():
                self._apply_one_by_one(sobject, records, progress, apply_records)
                self._record_outcomes(sobject, applied_records, progress)
                if total is not None:
                    self._save_progress(progress, total)

    @contextmanager
    def _page_transaction(self) -> Iterator[None]:
        """A page's transaction: the totals coverage row first (FOR SHARE: it waits while a
        totals rebuild holds it), then the lease renewal (`fenced`). In the other order the page
        would wait for the rebuild holding the lease row (an UPDATE locks it until commit), and
        the heartbeat's renewal would wait behind it until the lease expired: SyncLeaseLost for
        a cycle that was only waiting. The applier's own `locked_coverage()` later in the
        transaction finds the lock already held."""
        with transaction.atomic():
            locked_coverage()
            with self.lock.fenced():
                yield

    def _apply_one_by_one(
        self,
        sobject: str,
        records: list[dict[str, Any]],
        progress: ObjectProgress,
        apply_records: Callable[[list[dict[str, Any]]], Any],
    ) -> None:
        """Within the caller's transaction, each record in a savepoint of its own: on PostgreSQL
        a failed statement aborts the whole transaction, and rolling back to the savepoint is
        what makes it usable again for the next record.

        When every record of the page (at least ALL_ALIKE_MINIMUM fresh ones) fails alone with the
        same type of error,
        the fault is not theirs (an applier bug, a schema the code does not match): the error is
        raised, the page's transaction rolls back, and the object fails and backs off with its
        watermark held, instead of every record of every page being set aside."""
        counters = progress.context.counters
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
            known = set_aside.set_aside_ids(sobject)
            if sum(1 for r in records if str(r.get("Id")) not in known) >= ALL_ALIKE_MINIMUM:
                counters.restore(page_before)
                raise errors[0]

    def _record_outcomes(self, sobject: str, records: list[dict[str, Any]], progress: ObjectProgress) -> None:
        """The page's records set aside (by id) or, applied, no longer set aside."""
        failed = progress.context.counters.set_aside
        progress.context.counters.set_aside = {}
        for record_id in [i for i in failed if not SALESFORCE_ID.fullmatch(i)]:
            # Nothing to re-read it by: the log and the run's failed count are its trace.
            logger.warning(
                "%s: a record without a valid Id (%r) was dropped: %s",
                sobject,
                record_id,
                failed.pop(record_id),
            )
        if not failed and sobject not in self.set_aside_objects:
            return  # nothing of this object is set aside: no statement at all
        applied = [str(r["Id"]) for r in records if r.get("Id")]
        set_aside.record_outcomes(sobject, applied, failed)
        if failed:
            self.set_aside_objects.add(sobject)

    def _retry_set_aside(
        self, sobject: str, ids: list[str], state: SyncState, progress: ObjectProgress, now: dt.datetime
    ) -> None:
        """Re-read the set-aside records whose retry has come, by id, and apply them (a window may
        have applied some meanwhile: those are not asked for). Equal SystemModstamps are applied
        again (`force`): the stored row may be an older version than the one that failed. A record
        set aside during its object's first load records first-load activities, as it would have
        then (no trigger fires for old news). What Salesforce no longer returns is forgotten, with
        a log line."""
        pending = set_aside.still_set_aside(sobject, ids, since=now)
        loaded_at = state.initial_load_completed_at
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
        self._within_quota()
        fields = active_fields(sobject)
        found: set[str] = set()
        context = progress.context
        live = context.is_initial_load
        context.force = True
        try:
            for first_load, group in groups.items():
                context.is_initial_load = live or first_load
                for soql in ids_soql_chunks(self.client, sobject, fields, group):
                    for records in self.client.query_all(soql):
                        found.update(str(r.get("Id")) for r in records)
                        self._apply(sobject, records, fields, progress, 0)
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
            with self.lock.fenced():
                set_aside.postpone(sobject, waiting)
            return
        finally:
            context.force, context.is_initial_load = False, live
        with self.lock.fenced():
            set_aside.forget_missing(sobject, set(wanted) - found)
        logger.info("%s: retried %d set-aside records, %d returned", sobject, len(wanted), len(found))

    # --- back-fill, deletes, reconciliation -------------------------------------------------------
    def _backfill(self, sobject: str, names: list[str], progress: ObjectProgress) -> None:
        """Values of fields that appeared, for the rows OppSync already has (no SystemModstamp
        changed, so the windows would never bring them). It runs once, when describe first sees
        the fields: a record that cannot take its values is set aside (its retry by id re-reads
        it whole) and the rest of the back-fill goes on. A page that fails is applied again
        record by record, as a window's page is (`_apply`)."""
        fields = active_fields(sobject)
        names = [n for n in names if n in fields]
        if not names:
            return
        soql = f"SELECT {', '.join(select_list(sobject, fields, only=names))} FROM {sobject}"
        self._within_quota()
        counters = progress.context.counters
        for records in self.client.query_all(soql):
            # The rows a back-fill changed are no evidence about a record set aside for another
            # reason: only its failures are recorded (`applied_records` empty).
            self._apply_page(
                sobject,
                records,
                progress,
                lambda page: apply.values_backfill(sobject, page, fields, counters),
                applied_records=[],
                total=None,
            )

    def _deleted_windows(
        self, states: dict[str, SyncState], now: dt.datetime
    ) -> dict[str, tuple[dt.datetime, dt.datetime]]:
        # getDeleted refuses a window of one minute or less (INVALID_REPLICATION_DATE): the
        # minute-aligned window must span at least two minutes.
        shortest = dt.timedelta(minutes=2)
        interval = max(dt.timedelta(seconds=settings.SALESFORCE_DELETED_INTERVAL), shortest)
        end = minute_floor(now)
        windows = {}
        for sobject, state in states.items():
            start = state.deleted_checked_until or end
            oldest = end - dt.timedelta(days=14)
            if end - start >= interval:
                windows[sobject] = (max(start, oldest), end)
        return windows

    def _deleted_result(
        self,
        sobject: str,
        result: CompositeResult,
        window: tuple[dt.datetime, dt.datetime],
        state: SyncState,
        progress: ObjectProgress,
    ) -> bool:
        """Apply getDeleted; True when deletes were purged past our last check (reconcile)."""
        try:
            result.raise_for_error()
        except SalesforceRequestError as error:
            if error.error_code == "INVALID_REPLICATION_DATE":
                state.deleted_checked_until = window[1]
                return True
            raise
        deleted = deleted_from_body(result.body)
        self._apply_hard_deletes(
            sobject, [(i, parse_datetime(d)) for i, d in deleted.deleted], progress.context
        )
        covered = parse_datetime(deleted.latest_date_covered) if deleted.latest_date_covered else window[1]
        state.deleted_checked_until = max(covered, window[0])
        earliest = (
            parse_datetime(deleted.earliest_date_available) if deleted.earliest_date_available else None
        )
        return earliest is not None and earliest > window[0]

    def _apply_hard_deletes(
        self, sobject: str, deleted: list[tuple[str, dt.datetime]], context: apply.ApplyContext
    ) -> None:
        """Deletes from getDeleted; a row changed after its deletion date was undeleted: kept."""
        if not deleted:
            return
        when = dict(deleted)
        stored = SPECS[sobject].stored_stamps(list(when))
        gone = {i: d for i, d in when.items() if i in stored and _not_after(stored[i], d)}
        self._mark_gone(sobject, gone, context)  # each removal is dated by its own deletedDate

    def _mark_gone(
        self, sobject: str, deleted_at: dict[str, dt.datetime], context: apply.ApplyContext
    ) -> None:
        """Rows gone from Salesforce, each with when it went (its deletedDate, or now when a
        reconcile found it missing)."""
        ids = list(deleted_at)
        # Bounded chunks, each its own fenced transaction: a reconcile that finds 100,000 rows
        # gone stays within SQLite's variable limit and never holds one giant write lock.
        for start in range(0, len(ids), ID_CHUNK_WRITE):
            chunk = {i: deleted_at[i] for i in ids[start : start + ID_CHUNK_WRITE]}
            with self._page_transaction():  # coverage before the lease (see there)
                SPECS[sobject].mark_gone(chunk, context)

    def _reconcile(self, sobject: str, progress: ObjectProgress) -> None:
        """Compare ids: local rows Salesforce no longer has are gone (hard deletes, purges, lost
        visibility); rows Salesforce has that OppSync lacks (sharing changes) are fetched."""
        self._within_quota()
        remote: set[str] = set()
        for records in self.client.query_all(f"SELECT Id FROM {sobject}", include_deleted=False):
            remote.update(r["Id"] for r in records)
            self.lock.renew()
        live, known = SPECS[sobject].local_ids()
        found_missing = timezone.now()
        self._mark_gone(sobject, dict.fromkeys(live - remote, found_missing), progress.context)
        # Ids go into SOQL literals: only well-formed Salesforce ids get there. Set-aside records
        # are left to their retry by id: it applies them with the first load's flag when they were
        # set aside during it (this fetch has the cycle's live one: old news would fire triggers).
        waiting = set_aside.set_aside_ids(sobject)
        missing = sorted(i for i in remote - live - waiting if SALESFORCE_ID.fullmatch(i))
        fields = active_fields(sobject)
        progress.context.force = True
        for soql in ids_soql_chunks(self.client, sobject, fields, missing):
            for records in self.client.query_all(soql):
                self._apply(sobject, records, fields, progress, len(missing))
        progress.context.force = False
        logger.info(
            "Reconciled %s: %d gone, %d fetched (%d known)",
            sobject,
            len(live - remote),
            len(missing),
            len(known),
        )

    def _refresh_formulas(self, sobject: str, progress: ObjectProgress) -> None:
        """Calculated fields change without a SystemModstamp bump, so no window brings them. With
        the (daily) reconcile, read only Id and those fields: at a million opportunities that is
        500 calls a day for Opportunity, none for an object without formula fields."""
        fields = active_fields(sobject)
        formulas = sorted(name for name, info in fields.items() if info.calculated)
        if not formulas:
            return
        self._within_quota()
        soql = f"SELECT Id, SystemModstamp, {', '.join(formulas)} FROM {sobject}"
        detected_at = self.client.org_now()
        changed = 0
        for records in self.client.query_all(soql, include_deleted=False):
            with self._page_transaction():  # coverage before the lease (see there)
                changed += SPECS[sobject].formulas_refresh(records, fields, progress.context, detected_at)
                # A formula value that does not fit: that record is set aside (its retry re-reads it
                # whole); the rows this refresh did not change are no evidence either way.
                self._record_outcomes(sobject, [], progress)
        logger.info("Refreshed %d formula fields of %s: %d rows changed", len(formulas), sobject, changed)

    # --- per-object runs --------------------------------------------------------------------------
    def _start_object(
        self, cycle: SyncCycle, sobject: str, window: tuple[dt.datetime, dt.datetime] | None, initial: bool
    ) -> ObjectProgress:
        run = SyncObjectRun.objects.create(
            cycle=cycle,
            sobject=sobject,
            started_at=timezone.now(),
            window_start=window[0] if window else None,
            window_end=window[1] if window else None,
            is_initial_load=initial,
        )
        context = apply.ApplyContext(cycle=cycle, is_initial_load=initial, counters=apply.Counters())
        return ObjectProgress(run=run, context=context, calls_before=self.client.calls)

    def _save_progress(self, progress: ObjectProgress, total: int) -> None:
        """Counts so far, page by page, so the status page shows a first load's progress and the
        backlog while the cycle runs (one small UPDATE per page)."""
        counters, run = progress.context.counters, progress.run
        if total:
            run.expected_count = max(run.expected_count or 0, total)
        SyncObjectRun.objects.filter(pk=run.pk).update(
            expected_count=run.expected_count,
            created_count=counters.created,
            updated_count=counters.updated,
            deleted_count=counters.deleted,
            skipped_count=counters.skipped,
            failed_count=counters.failed,
        )

    def _finish_object(self, progress: ObjectProgress, *, status: str = SyncStatus.SUCCEEDED) -> None:
        counters, run = progress.context.counters, progress.run
        run.created_count, run.updated_count, run.deleted_count = (
            counters.created,
            counters.updated,
            counters.deleted,
        )
        run.skipped_count, run.failed_count = counters.skipped, counters.failed
        run.api_calls = self.client.calls - progress.calls_before
        if status == SyncStatus.SUCCEEDED:
            run.error_message = "; ".join(counters.errors)
        run.status = status
        run.ended_at = timezone.now()
        run.save()


def _over_pause(usage: tuple[int, int] | None) -> bool:
    """Whether the org's daily API use is at or above SALESFORCE_QUOTA_PAUSE."""
    return bool(usage and usage[1] and usage[0] / usage[1] >= settings.SALESFORCE_QUOTA_PAUSE)


def _usage_words(usage: tuple[int, int]) -> str:
    return (
        f"the org has used {usage[0]:,} of its {usage[1]:,} daily API calls ({usage[0] / usage[1]:.0%}), "
        f"above SALESFORCE_QUOTA_PAUSE ({settings.SALESFORCE_QUOTA_PAUSE:.0%})"
    )


def _not_after(stamp: dt.datetime | None, moment: dt.datetime) -> bool:
    return stamp is None or stamp <= moment


def _retry_due(retry_after: dt.datetime | None, now: dt.datetime) -> bool:
    return retry_after is None or retry_after <= now
