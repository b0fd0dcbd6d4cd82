"""Trigger evaluation (queue `triggers`): which people run through which campaigns for the
activities the sync has just recorded.

The activity log is read in id order from a cursor. One transaction moves the cursor and writes
the deliveries it decided (the outbox), so a worker killed at any point either decided nothing
(the next one decides the same) or decided everything (nothing is decided twice); the unique
(campaign, activity) constraint makes "twice" impossible besides. Activities of the initial load
trigger nothing, nor do activities recorded before a campaign was active.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from opportunities.api.mixins import synced_data_context
from opportunities.models import Activity
from smartlists.evaluate import Clock, InactiveFieldsError, SmartListCycleError, activity_matches, evaluate
from smartlists.registry import Catalog
from smartlists.validation import CheckedFilter, DefinitionError, check_definition

from .models import Campaign, CampaignMember, Delivery, Qualification, TriggerCursor
from .payload import delivery_payload

logger = logging.getLogger(__name__)

# Each trigger is its smart-list activity filter, applied to one activity.
TRIGGER_FILTERS = {
    "added_to_opportunity": "was_added_to_opportunity",
    "removed_from_opportunity": "was_removed_from_opportunity",
    "opportunity_updated": "opportunity_was_updated",
}
TRIGGER_LABELS = {
    "added_to_opportunity": "Added to Opportunity",
    "removed_from_opportunity": "Removed from Opportunity",
    "opportunity_updated": "Opportunity is Updated",
}
# Constraints about a history of activities, which mean nothing for the one activity a trigger sees.
NOT_FOR_TRIGGERS = {"date_of_activity", "min_number_of_times"}
MAX_TRIGGERS = 20
BATCH = 2000


def check_triggers(triggers: Any, catalog: Catalog) -> list[CheckedFilter]:
    """Check a campaign's triggers against the filter registry; raise DefinitionError naming each
    problem by its place (`triggers[1].constraints[0].operator`)."""
    if not isinstance(triggers, list) or not 1 <= len(triggers) <= MAX_TRIGGERS:
        raise DefinitionError({"triggers": [f"must be a list of 1 to {MAX_TRIGGERS} triggers"]})
    errors: dict[str, list[str]] = {}
    filters: list[Any] = []
    for index, raw in enumerate(triggers):
        where = f"triggers[{index}]"
        name = raw.get("trigger") if isinstance(raw, dict) else None
        if name not in TRIGGER_FILTERS:
            errors[f"{where}.trigger"] = [
                f"{name!r} is not a trigger; use one of {', '.join(TRIGGER_FILTERS)}"
            ]
            filters.append({"filter": "was_added_to_opportunity"})
            continue
        assert isinstance(raw, dict)
        for c_index, constraint in enumerate(raw.get("constraints") or []):
            if isinstance(constraint, dict) and constraint.get("field") in NOT_FOR_TRIGGERS:
                errors[f"{where}.constraints[{c_index}].field"] = [
                    f"{constraint['field']!r} is a smart-list constraint; a trigger fires on one activity as it happens"
                ]
        extra = set(raw) - {"trigger", "field", "constraints"}
        if extra:
            errors[where] = [
                f"unknown key {sorted(extra)[0]!r}; a trigger has trigger, field and constraints"
            ]
        filters.append({**{k: v for k, v in raw.items() if k != "trigger"}, "filter": TRIGGER_FILTERS[name]})
    try:
        checked = check_definition({"logic": "any", "filters": filters}, catalog)
    except DefinitionError as error:
        for where, messages in error.errors.items():
            errors.setdefault(where.replace("filters", "triggers", 1), messages)
        raise DefinitionError(errors) from error
    if errors:
        raise DefinitionError(errors)
    return checked.filters


# What building or compiling a query raises for values the SQL cannot hold (a date past year
# 9999, a number past what Decimal or the backend takes).
UNEVALUABLE = (ArithmeticError, ValueError, TypeError)


def _compile(queryset: QuerySet[Any]) -> None:
    """Compile a query's SQL without running it: what a value the SQL cannot hold raises."""
    with contextlib.suppress(EmptyResultSet, FullResultSet):  # it compiles: to nothing or everything
        queryset.query.sql_with_params()


def check_trigger_queries(triggers: Any, catalog: Catalog, clock: Clock | None = None) -> None:
    """Check the triggers and build (and compile) each one's query, as evaluation will: a value
    that checks but cannot be evaluated is refused under `triggers[i]`, naming why."""
    items = check_triggers(triggers, catalog)
    clock = clock or Clock.current()
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        try:
            _compile(activity_matches(item, clock))
        except UNEVALUABLE as error:
            errors[f"triggers[{index}]"] = [
                f"{_culprit(item, clock)}cannot be evaluated ({_error_words(error)})"
            ]
    if errors:
        raise DefinitionError(errors)


def _first_unevaluable(parts: list[Any], build: Callable[[Any], QuerySet[Any]]) -> int | None:
    """The index of the first part whose query, built and compiled by itself, cannot be
    evaluated, or None when only their combination fails. A part refused for another reason by
    itself (it does not check alone) is not the one looked for."""
    for index, part in enumerate(parts):
        try:
            _compile(build(part))
        except UNEVALUABLE:
            return index
        except (DefinitionError, SmartListCycleError, InactiveFieldsError):
            pass
    return None


def _culprit(item: CheckedFilter, clock: Clock) -> str:
    """The constraint that cannot be evaluated by itself, in words ("CloseDate is
    ['9999-12-31'] "), or "" when only the combination fails."""
    found = _first_unevaluable(
        item.constraints,
        lambda constraint: activity_matches(dataclasses.replace(item, constraints=[constraint]), clock),
    )
    if found is None:
        return ""
    constraint = item.constraints[found]
    return f"{constraint.field.field} {constraint.operator} {constraint.value!r} "


def check_smart_list(definition: Any, catalog: Catalog) -> None:
    """The campaign's smart list, as a smart list is checked (errors under `smart_list.`), and
    its query built and compiled, as evaluation will."""
    if definition is None:
        return
    try:
        _compile(evaluate(definition, catalog=catalog).people)
    except DefinitionError as error:
        raise DefinitionError({f"smart_list.{k}": v for k, v in error.errors.items()}) from error
    except SmartListCycleError as error:
        raise DefinitionError({"smart_list.filters": [str(error)]}) from error
    except InactiveFieldsError as error:
        raise DefinitionError({f"smart_list.{k}": [v] for k, v in error.locations.items()}) from error
    except UNEVALUABLE as error:
        where = _failing_filter(definition, catalog) or "smart_list"
        raise DefinitionError(
            {where: [f"cannot be evaluated ({_error_words(error)}); check its dates and numbers"]}
        ) from error


def _failing_filter(definition: dict[str, Any], catalog: Catalog) -> str | None:
    """`smart_list.filters[i]` of the first filter that cannot be evaluated by itself."""
    filters = definition.get("filters") or []
    found = _first_unevaluable(
        filters if isinstance(filters, list) else [],
        lambda item: evaluate({"logic": "all", "filters": [item]}, catalog=catalog).people,
    )
    return None if found is None else f"smart_list.filters[{found}]"


class CampaignFailed(Exception):
    """A campaign's evaluation cannot run; `reason` says why in words (shown on the campaign)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _error_words(error: BaseException) -> str:
    if isinstance(error, DefinitionError):
        return "; ".join(f"{where}: {' '.join(messages)}" for where, messages in error.errors.items())
    text = " ".join(str(error).split())[:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class CampaignSkipped(Exception):
    """A campaign that cannot be decided for this batch only, not through its own fault: one of
    the fields its triggers or smart list name is inactive right now (a describe that briefly
    misses it, a field-level-security flip). It is not paused; `reason` says why (logged)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _named_fields(value: Any) -> set[str]:
    """Every field name a definition's JSON names (`{"field": "X"}` at any depth)."""
    if isinstance(value, dict):
        found = {value["field"]} if isinstance(value.get("field"), str) else set()
        return found.union(*(_named_fields(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_named_fields(item) for item in value))
    return set()


def _inactive_named(value: Any, catalog: Catalog) -> set[str]:
    return _named_fields(value) & set(catalog.inactive_opportunity)


def _campaign_failed(error: Exception, words: str) -> CampaignFailed:
    """The campaign's own failure, with `words` and why (the campaign is paused)."""
    return CampaignFailed(f"{words} ({_error_words(error)})")


def _matching(campaign: Campaign, activity_ids: list[int], catalog: Catalog, clock: Clock) -> list[int]:
    """Ids of the activities (among `activity_ids`) that fire one of the campaign's triggers and
    whose person matches its smart list. Raises CampaignFailed (its triggers or smart list no
    longer check, or cannot be evaluated), CampaignSkipped (a field they name is inactive right
    now), or the batch's own failure (a time limit, a lost or busy database) as it came."""
    try:
        items = check_triggers(campaign.triggers, catalog)
    except DefinitionError as error:
        inactive = _inactive_named(campaign.triggers, catalog)
        if inactive:
            raise CampaignSkipped(f"its triggers name inactive fields {sorted(inactive)}") from error
        raise CampaignFailed(f"its triggers no longer check ({_error_words(error)})") from error
    inactive = {name for item in items for name in item.inactive_fields}
    if inactive:  # evaluated without that constraint, the trigger would fire for too much
        raise CampaignSkipped(f"its triggers name inactive fields {sorted(inactive)}")
    fired: set[int] = set()
    try:
        for item in items:
            matches = activity_matches(item, clock).filter(pk__in=activity_ids)
            fired |= set(matches.values_list("pk", flat=True))
    except Exception as error:  # a date out of range, a comparison the database refuses
        if not_the_campaigns(error):
            raise  # the batch's: retried whole, no campaign paused
        raise _campaign_failed(error, "its triggers could not be evaluated") from error
    if not fired or campaign.smart_list is None:
        return sorted(fired)
    people = dict(Activity.objects.filter(pk__in=fired).values_list("pk", "person_id"))
    try:
        members = set(
            evaluate(campaign.smart_list, catalog=catalog, clock=clock)
            .people.filter(pk__in=set(people.values()))
            .values_list("pk", flat=True)
        )
    except InactiveFieldsError as error:
        raise CampaignSkipped(f"its smart list names inactive fields ({error})") from error
    except (DefinitionError, SmartListCycleError) as error:
        inactive = _inactive_named(campaign.smart_list, catalog)
        if inactive:
            raise CampaignSkipped(f"its smart list names inactive fields {sorted(inactive)}") from error
        raise CampaignFailed(f"its smart list no longer checks ({_error_words(error)})") from error
    except Exception as error:
        if not_the_campaigns(error):
            raise  # the batch's: retried whole, no campaign paused
        raise _campaign_failed(error, "its smart list could not be evaluated") from error
    return sorted(a for a in fired if people[a] in members)


def _qualifies(campaign: Campaign, person_id: int, now: dt.datetime) -> bool:
    """Record the run for the person, if the qualification rule lets them run now. One
    conditional UPDATE: of two evaluators deciding at once, only one can qualify the person."""
    if campaign.qualification == Qualification.EVERY_TIME:
        return True
    CampaignMember.objects.bulk_create(
        [CampaignMember(campaign=campaign, person_id=person_id)], ignore_conflicts=True
    )
    allowed = Q()
    if campaign.qualification == Qualification.ONCE:
        allowed = Q(last_run_at__isnull=True)
    elif campaign.qualification == Qualification.ONCE_EVERY_DAYS:
        days = campaign.qualification_days or 1
        allowed = Q(last_run_at__isnull=True) | Q(last_run_at__lte=now - dt.timedelta(days=days))
    updated = (
        CampaignMember.objects.filter(campaign=campaign, person_id=person_id)
        .filter(allowed)
        .update(last_run_at=now, runs=F("runs") + 1)
    )
    return updated == 1


def _cursor() -> TriggerCursor:
    """The cursor row. Migration 0003 starts it at the end of the log OppSync had when campaigns
    were installed; should it be missing, it starts at the beginning, which replays nothing: only
    activities recorded after a campaign became active can trigger it."""
    cursor = TriggerCursor.objects.order_by("pk").first()
    return cursor or TriggerCursor.objects.create(last_activity_id=0)


def evaluate_pending(*, on_decided: Callable[[list[int]], None] | None = None) -> int:
    """Decide the campaigns of every activity recorded since the cursor, in batches; return the
    number of deliveries decided. `on_decided` gets each batch's delivery ids after it commits."""
    decided_total = 0
    catalog = Catalog.load()
    while True:
        delivery_ids, more = _evaluate_batch(catalog)
        decided_total += len(delivery_ids)
        if delivery_ids and on_decided is not None:
            on_decided(delivery_ids)
        if not more:
            return decided_total


def _evaluate_batch(catalog: Catalog) -> tuple[list[int], bool]:
    cursor = _cursor()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A query that never ends would meet the task's time limit, which is no campaign's
            # fault and would stop every campaign at this batch for ever; a statement timeout
            # is a failure `_keeps_failing` can count against the campaign whose query it was.
            with connection.cursor() as sql:
                sql.execute(f"SET LOCAL statement_timeout = {CAMPAIGN_STATEMENT_TIMEOUT_MS}")
        # Take the cursor first (a row lock on PostgreSQL, the write lock on SQLite): evaluators
        # run one at a time, each from where the last one committed.
        TriggerCursor.objects.filter(pk=cursor.pk).update(updated_at=timezone.now())
        cursor.refresh_from_db()
        batch = list(
            Activity.objects.filter(pk__gt=cursor.last_activity_id)
            .order_by("pk")
            .values_list("pk", "is_initial_load", "recorded_at")[:BATCH]
        )
        if not batch:
            return [], False
        delivery_ids = _decide([pk for pk, initial, _ in batch if not initial], catalog)
        cursor.last_activity_id = batch[-1][0]
        cursor.save(update_fields=["last_activity_id", "updated_at"])
    _transient_tries.clear()  # the batch is decided: what failed before it is behind us
    return delivery_ids, len(batch) == BATCH


def _decide(activity_ids: list[int], catalog: Catalog) -> list[int]:
    """Decide each active campaign for the activities, each in its own savepoint: a campaign
    whose evaluation fails (PostgreSQL aborts the transaction on a database error; the savepoint
    keeps that to the campaign) is paused with its reason, and the others decide as usual."""
    if not activity_ids:
        return []
    clock = Clock.current()
    now = timezone.now()
    decided: list[int] = []
    activities: dict[int, Activity] = {}
    context: dict[str, Any] | None = None
    for campaign in Campaign.objects.filter(is_active=True, active_since__isnull=False).order_by("pk"):
        recent = list(
            Activity.objects.filter(pk__in=activity_ids, recorded_at__gte=campaign.active_since).values_list(
                "pk", flat=True
            )
        )
        if not recent:
            continue
        if context is None:
            context = synced_data_context()  # once for the batch, not per delivery
        try:
            with transaction.atomic():
                decided += _decide_campaign(campaign, recent, activities, catalog, clock, now, context)
        except CampaignSkipped as skipped:
            # Not decided while the field is inactive (as Marketo does): the cursor moves on for
            # every campaign, so this one's activities of the batch never trigger it; it goes on
            # with the batch after the field is active again, without being switched on anew.
            logger.warning("Campaign %s skipped for this batch: %s", campaign.pk, skipped.reason)
        except Exception as error:  # the failure is this campaign's, unless it is the batch's
            if transaction.get_connection().needs_rollback:
                raise  # the batch is retried whole: nothing decided, the cursor where it was
            if not_the_campaigns(error) and not _keeps_failing(campaign, activity_ids, error):
                raise
            logger.warning("Campaign %s failed at evaluation", campaign.pk, exc_info=True)
            if isinstance(error, CampaignFailed):
                reason = error.reason
            elif not_the_campaigns(error):
                reason = f"its evaluation failed {TRANSIENT_TRIES} times in a row ({_error_words(error)})"
            else:
                reason = f"its evaluation failed ({_error_words(error)})"
            _pause(campaign, reason, now)
    return decided


# A failure that belongs to the moment (a statement timeout, a deadlock) retries the batch; one
# campaign meeting it at the same batch every time (its query always outlasts statement_timeout)
# would hold every campaign back for ever. After this many tries in a row in this process, it is
# that campaign's: it is paused with the reason, and the others go on.
TRANSIENT_TRIES = 5
CAMPAIGN_STATEMENT_TIMEOUT_MS = 120_000  # far below the task's soft time limit (25 minutes)
# Transient failures per campaign at one batch (the first activity id names the batch). Kept per
# batch, never reset by another campaign's failure: two campaigns that both keep failing both
# reach the count, and the batch that pauses them both commits.
_transient_tries: dict[int, int] = {}
_transient_batch: list[int] = [0]


def _keeps_failing(campaign: Campaign, activity_ids: list[int], error: BaseException) -> bool:
    """Count a transient failure of `campaign` at this batch; True from the TRANSIENT_TRIES-th.
    The time limit is the whole batch's and is never counted against the campaign met then."""
    if isinstance(error, SoftTimeLimitExceeded):
        return False
    if _transient_batch[0] != activity_ids[0]:
        _transient_tries.clear()
        _transient_batch[0] = activity_ids[0]
    _transient_tries[campaign.pk] = _transient_tries.get(campaign.pk, 0) + 1
    return _transient_tries[campaign.pk] >= TRANSIENT_TRIES


# SQLSTATE classes of failures that belong to the moment, not the campaign: transaction rollback
# (serialization failure, deadlock), insufficient resources (out of memory or disk), operator
# intervention (statement timeout, cancel, shutdown), connection exceptions; and lock_timeout.
TRANSIENT_SQLSTATE_CLASSES = {"40", "53", "57", "08"}
TRANSIENT_SQLSTATES = {"55P03"}


def not_the_campaigns(error: BaseException) -> bool:
    """Whether a failure met while deciding a campaign belongs to the batch, not the campaign:
    the task's time limit, any OperationalError (a timeout, a cancel, a lost connection, a
    deadlock, SQLite's busy database, no memory or disk left) or a database error whose SQLSTATE
    says the same. Such a batch is retried whole rather than a campaign paused, since resuming a
    paused campaign starts afresh and would lose the activities in between. What pauses is the
    campaign's own: DataError, ProgrammingError, IntegrityError, a definition that no longer
    checks, Python-level errors (OverflowError, ValueError, TypeError...)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # the error and what it came from
        seen.add(id(current))
        if isinstance(current, SoftTimeLimitExceeded):
            return True
        if isinstance(current, OperationalError):
            # SQLite reports the query's own faults (no such column, a bad function call) as
            # OperationalError too, under SQLITE_ERROR: those are the campaign's.
            return getattr(current.__cause__, "sqlite_errorname", None) != "SQLITE_ERROR"
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES
        ):
            return True
        current = current.__cause__
    return False


def _decide_campaign(
    campaign: Campaign,
    recent: list[int],
    activities: dict[int, Activity],
    catalog: Catalog,
    clock: Clock,
    now: dt.datetime,
    context: dict[str, Any],
) -> list[int]:
    """One campaign's deliveries for the activities: matched, qualified, written (the outbox)."""
    matched = _matching(campaign, recent, catalog, clock)
    missing = [pk for pk in matched if pk not in activities]
    activities.update(Activity.objects.select_related("person", "opportunity").in_bulk(missing))
    deliveries: list[Delivery] = []
    for pk in matched:
        activity = activities[pk]
        if activity.person_id is None or not _qualifies(campaign, activity.person_id, now):
            continue
        delivery = Delivery(
            campaign=campaign,
            activity=activity,
            person_id=activity.person_id,
            payload={},
            next_attempt_at=now,
        )
        delivery.payload = delivery_payload(delivery, context=context)
        deliveries.append(delivery)
    Delivery.objects.bulk_create(deliveries, batch_size=500, ignore_conflicts=True)
    keys = [d.idempotency_key for d in deliveries]
    return list(Delivery.objects.filter(idempotency_key__in=keys).values_list("pk", flat=True))


def _pause(campaign: Campaign, reason: str, now: dt.datetime) -> None:
    """Switch a campaign off with its reason (in the batch's transaction, so it commits with the
    cursor: the activities it could not decide are behind the cursor, and switching it on again
    starts afresh, as any activation does)."""
    reason = f"Paused by the evaluator: {reason}. Fix the campaign, then switch it on again."
    logger.warning("Campaign %s (%s) paused: %s", campaign.pk, campaign.name, reason)
    Campaign.objects.filter(pk=campaign.pk, is_active=True).update(
        is_active=False, paused_at=now, paused_reason=reason
    )
