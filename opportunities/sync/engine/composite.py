"""The cycle's one Composite request (one API call): what it asks of each object and the answers
by object. An idle cycle costs exactly this call."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings

from ...models import SyncCycle, SyncState
from ...salesforce.client import CompositeResult, SalesforceClient
from ...salesforce.records import FieldInfo
from ..fields import active_fields
from ..schedule import CLOCK_SKEW_WARNING_SECONDS
from .context import CycleRun
from .deletes import deleted_window
from .queries import window_soql

logger = logging.getLogger(__name__)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
Window = tuple[dt.datetime, dt.datetime]
# How much older than the last describe the If-Modified-Since is. The org-time estimate is read
# from whole-second Date headers (half a second either way, plus the network's delay), and a
# date too early only costs a describe body in a call made anyway, while a date too late would
# hide a change until the next unconditional describe.
DESCRIBE_SINCE_MARGIN = dt.timedelta(seconds=5)


@dataclass(frozen=True)
class ObjectPlan:
    """One object's part of the cycle: its window (`SystemModstamp > watermark - lookback AND
    SystemModstamp <= upper`), the SELECT list its query is built with (the records it returns
    carry those fields, so they are applied with it), whether its describe rides along, and its
    getDeleted window (None: not due). A describe that rides along carries If-Modified-Since
    `describe_since` (None: unconditional), so an unchanged object answers 304."""

    sobject: str
    state: SyncState
    initial: bool  # in its first load as the cycle began
    window: Window
    fields: dict[str, FieldInfo]
    describe: bool
    describe_since: dt.datetime | None
    deleted_window: Window | None


def reference_id(kind: str, sobject: str) -> str:
    """A subrequest's name in the Composite request and its answer (`describe_Contact`).
    Composite referenceIds may hold letters, digits and underscores only (REST API guide,
    "Composite Subrequest Result"); what an org does with others depends on its release."""
    return f"{kind}_{sobject}"


@dataclass(frozen=True)
class Answers:
    """The Composite answers, by object."""

    results: dict[str, CompositeResult]

    def describe(self, sobject: str) -> CompositeResult:
        return self.results[reference_id("describe", sobject)]

    def query(self, sobject: str) -> CompositeResult:
        return self.results[reference_id("query", sobject)]

    def deleted(self, sobject: str) -> CompositeResult:
        return self.results[reference_id("deleted", sobject)]


def describe_requests(client: SalesforceClient, sobjects: list[str]) -> list[tuple[str, str]]:
    return [(reference_id("describe", s), client.describe_url(s)) for s in sobjects]


@dataclass(frozen=True)
class CyclePlan:
    """What the cycle reads, object by object in contract order (Contact, Lead, Opportunity,
    OpportunityContactRole)."""

    objects: list[ObjectPlan]
    org_now: dt.datetime  # the org's time as the plan was made, before the request was sent

    def describing(self) -> list[str]:
        return [o.sobject for o in self.objects if o.describe]

    def send(self, client: SalesforceClient) -> Answers:
        """The describes, then each object's window query on queryAll, then the due getDeleted
        windows, in one Composite request; no call at all when no object's turn has come."""
        if not self.objects:
            return Answers({})
        subrequests = describe_requests(client, self.describing())
        subrequests += [
            (reference_id("query", o.sobject), client.query_url(window_soql(o.sobject, o.fields, *o.window)))
            for o in self.objects
        ]
        subrequests += [
            (
                reference_id("deleted", o.sobject),
                client.deleted_url(
                    o.sobject, o.deleted_window[0].isoformat(), o.deleted_window[1].isoformat()
                ),
            )
            for o in self.objects
            if o.deleted_window is not None
        ]
        since = {
            reference_id("describe", o.sobject): o.describe_since
            for o in self.objects
            if o.describe and o.describe_since is not None
        }
        return Answers(client.composite(subrequests, modified_since=since))


def describe_since(state: SyncState, org_now: dt.datetime, *, always: bool) -> dt.datetime | None:
    """The If-Modified-Since of an object's describe: a margin before its last describe that
    answered with a body (both on the org's clock). None (describe unconditionally) when `always`
    (the operator's command), when it was never described, or when that describe is
    SALESFORCE_DESCRIBE_INTERVAL old: the backstop for a metadata change an org's
    If-Modified-Since would not show. A last describe in the org's future (a time stored from
    another clock) is no evidence either."""
    last = state.last_describe_at
    interval = dt.timedelta(seconds=settings.SALESFORCE_DESCRIBE_INTERVAL)
    if always or last is None or last > org_now or org_now - last >= interval:
        return None
    return last - DESCRIBE_SINCE_MARGIN


def cycle_plan(run: CycleRun, states: dict[str, SyncState], *, described: list[str]) -> CyclePlan:
    """The plan of the objects whose turn it is (`states`). Every cycle's Composite describes each
    object, unless it was `described` by this cycle already, with If-Modified-Since
    (`describe_since`): an unchanged object answers 304 at no extra cost, so a new field is seen
    in the next cycle.

    Windows follow the org's clock, not ours: a host clock running ahead would otherwise set
    watermarks in the org's future and skip what commits meanwhile. The upper bound leads the
    org's time a little (the Date header has whole seconds); late commits below it are caught by
    the next window's lookback."""
    lookback = dt.timedelta(seconds=settings.SALESFORCE_LOOKBACK_SECONDS)
    org_now = run.client.org_now()
    _clock_skew_record(run.cycle, run.now, org_now)
    upper = org_now + dt.timedelta(seconds=settings.SALESFORCE_CLOCK_LEAD_SECONDS)
    return CyclePlan(
        [
            ObjectPlan(
                sobject,
                state,
                initial=state.initial_load_completed_at is None,
                # A lookback before the watermark catches rows that committed late with an older stamp.
                window=(state.watermark - lookback if state.watermark is not None else EPOCH, upper),
                fields=active_fields(sobject),
                describe=sobject not in described,
                describe_since=describe_since(state, org_now, always=run.always_describe),
                deleted_window=deleted_window(state, org_now),
            )
            for sobject, state in states.items()
        ],
        org_now=org_now,
    )


def _clock_skew_record(cycle: SyncCycle, now: dt.datetime, org_now: dt.datetime) -> None:
    skew = (now - org_now).total_seconds()
    cycle.clock_skew_seconds = round(skew, 1)  # saved with the cycle's outcome
    if abs(skew) > CLOCK_SKEW_WARNING_SECONDS:
        logger.warning(
            "This host's clock is %.0f s %s Salesforce's; sync windows follow Salesforce's clock",
            abs(skew),
            "ahead of" if skew > 0 else "behind",
        )
