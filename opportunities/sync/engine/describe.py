"""Describe: what fields each object has. An object's first cycle describes it in a call of its
own; after that its describe rides along in every cycle's Composite request with
If-Modified-Since (a 304 says nothing changed and costs nothing: the Composite is one call either
way), unconditionally once a SALESFORCE_DESCRIBE_INTERVAL and in the operator's command, and it
is described at once when a query reports INVALID_FIELD. Every describe is stored one way
(`description_store`); fields that appeared are back-filled for the rows OppSync already holds
(`backfill`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils import timezone

from ...models import FieldDefinition, SyncState
from ...salesforce.client import CompositeResult, description_from_body
from ...salesforce.records import ObjectDescription
from .. import apply
from ..fields import active_fields, field_definitions_sync, select_list
from ..lock import SyncLock
from .bookkeeping import ObjectWork, object_isolated
from .composite import Answers, describe_requests
from .context import CycleRun
from .pages import page_apply


@dataclass
class Described:
    """What a cycle's describes did: the objects described, and by object the fields that
    appeared and need a back-fill."""

    objects: list[str] = field(default_factory=list)
    backfills: dict[str, list[str]] = field(default_factory=dict)


def description_store(
    lock: SyncLock, description: ObjectDescription, state: SyncState, asked_at: dt.datetime
) -> list[str]:
    """Store what describe shows (`field_definitions_sync`) and when it was asked, in one fenced
    transaction. `asked_at` is on the org's clock, taken before the request went out: the next
    If-Modified-Since is compared with the org's metadata times, and a time from before the
    describe can only make a change show twice, never not at all. Returns the fields to
    back-fill: those that appeared, once the object has a watermark (until then its first load
    reads every field anyway)."""
    with lock.fenced():
        appeared = field_definitions_sync(description, now=timezone.now())
        state.last_describe_at = asked_at
        state.save(update_fields=["last_describe_at"])
    return appeared if state.watermark is not None else []


def answers_store(
    run: CycleRun,
    states: dict[str, SyncState],
    sobjects: list[str],
    answer: Callable[[str], CompositeResult],
    asked_at: dt.datetime,
) -> Described:
    """The Composite's describe answers of `sobjects` (asked at `asked_at`, the org's time)
    stored; a 304 (unchanged since If-Modified-Since) leaves everything as it is. An object whose
    describe failed fails (`object_isolated`) and is left out of the rest of the cycle."""
    described = Described(objects=list(sobjects))
    for sobject in sobjects:
        with object_isolated(run, sobject, states[sobject], None):
            result = answer(sobject)
            if result.not_modified:
                continue
            result.raise_for_error()
            description = description_from_body(sobject, result.body)
            appeared = description_store(run.lock, description, states[sobject], asked_at)
            if appeared:
                described.backfills[sobject] = appeared
    return described


def first_describes(run: CycleRun, states: dict[str, SyncState]) -> Described:
    """Objects never described (their first cycle) are described before their windows can be
    built, in a Composite request of their own."""
    known = set(FieldDefinition.objects.filter(is_active=True).values_list("sobject", flat=True).distinct())
    unknown = [s for s in states if s not in known]
    if not unknown:
        return Described()
    asked_at = run.client.org_now()
    answers = Answers(run.client.composite(describe_requests(run.client, unknown)))
    return answers_store(run, states, unknown, answers.describe, asked_at)


def describe_again(run: CycleRun, work: ObjectWork) -> list[str]:
    """A query reported INVALID_FIELD (field-level security, a deleted custom field): describe now.
    Returns the fields to back-fill."""
    asked_at = run.client.org_now()
    description = run.client.describe(work.sobject)
    return description_store(run.lock, description, work.state, asked_at)


def backfill(run: CycleRun, work: ObjectWork, names: list[str]) -> None:
    """Values of fields that appeared, for the rows OppSync already has (no SystemModstamp
    changed, so the windows would never bring them). It runs once, when describe first sees
    the fields: a record that cannot take its values is set aside (its retry by id re-reads
    it whole) and the rest of the back-fill goes on. A page that fails is applied again
    record by record, as a window's page is (`pages.page_apply`)."""
    sobject = work.sobject
    fields = active_fields(sobject)
    names = [n for n in names if n in fields]
    if not names:
        return
    soql = f"SELECT {', '.join(select_list(sobject, fields, only=names))} FROM {sobject}"
    run.within_quota()
    counters = work.context.counters
    for records in run.client.query_all(soql):
        # The rows a back-fill changed are no evidence about a record set aside for another
        # reason: only its failures are recorded (`applied_records` empty).
        page_apply(
            run,
            work,
            records,
            lambda page: apply.values_backfill(sobject, page, fields, counters),
            applied_records=[],
            total=None,
        )
