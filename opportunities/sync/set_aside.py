"""Records set aside: a record that cannot be stored is one record's failure, not its page's,
its object's or the cycle's (issue P11). See `SetAsideRecord` for the life of a row.

The engine calls `record_outcomes` in the transaction that applied a page (so a record's row goes
in the same commit as its data), `due_ids` at the start of an object's turn and `forget_missing`
after re-reading them by id."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from ..models import SetAsideRecord

logger = logging.getLogger(__name__)

RETRY_LONGEST = dt.timedelta(hours=1)
# Records re-read per object and cycle: 10 queries of 200 ids. A mass failure (every record of a
# first load set aside) is retried over several cycles instead of in one burst of calls.
RETRIES_PER_CYCLE = 2000
REASON_LENGTH = 2000
IDS_PER_STATEMENT = 2000  # ids per SQL statement (SQLite's variable limit)


def retry_wait(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failure: doubling from the setting, at most an hour."""
    first = dt.timedelta(seconds=settings.SALESFORCE_SET_ASIDE_RETRY_SECONDS)
    return min(first * 2 ** max(attempts - 1, 0), RETRY_LONGEST)


def objects_with_set_aside() -> set[str]:
    return set(SetAsideRecord.objects.values_list("sobject", flat=True).distinct())


def record_outcomes(
    sobject: str, applied: Iterable[str], failed: dict[str, str], now: dt.datetime | None = None
) -> None:
    """After a page: rows of the records that applied go; the records that failed are set aside
    (or, already set aside, counted as one more attempt with the wait doubled)."""
    now = now or timezone.now()
    applied_ids = [i for i in set(applied) if i not in failed]
    for start in range(0, len(applied_ids), IDS_PER_STATEMENT):
        SetAsideRecord.objects.filter(
            sobject=sobject, sf_id__in=applied_ids[start : start + IDS_PER_STATEMENT]
        ).delete()
    if not failed:
        return
    existing = {
        row.sf_id: row for row in SetAsideRecord.objects.filter(sobject=sobject, sf_id__in=list(failed))
    }
    new_rows = []
    for sf_id, reason in failed.items():
        row = existing.get(sf_id)
        if row is None:
            new_rows.append(
                SetAsideRecord(
                    sobject=sobject,
                    sf_id=sf_id,
                    reason=reason[:REASON_LENGTH],
                    first_failed_at=now,
                    last_tried_at=now,
                    attempts=1,
                    retry_after=now + retry_wait(1),
                )
            )
            logger.warning("%s %s set aside (retried by id until it applies): %s", sobject, sf_id, reason)
            continue
        row.attempts += 1
        row.reason = reason[:REASON_LENGTH]
        row.last_tried_at = now
        row.retry_after = now + retry_wait(row.attempts)
    SetAsideRecord.objects.bulk_create(new_rows)
    SetAsideRecord.objects.bulk_update(
        list(existing.values()), ["attempts", "reason", "last_tried_at", "retry_after"]
    )


def due_ids(sobject: str, now: dt.datetime) -> list[str]:
    """Ids of the object's set-aside records whose retry has come, the longest waiting first."""
    return list(
        SetAsideRecord.objects.filter(sobject=sobject, retry_after__lte=now)
        .order_by("retry_after", "sf_id")
        .values_list("sf_id", flat=True)[:RETRIES_PER_CYCLE]
    )


def set_aside_ids(sobject: str) -> set[str]:
    """The ids of every record of the object set aside."""
    return set(SetAsideRecord.objects.filter(sobject=sobject).values_list("sf_id", flat=True))


def postpone(sobject: str, ids: list[str], now: dt.datetime | None = None) -> None:
    """Their retry could not read them (Salesforce refused the query): not their fault, so no
    attempt is counted; each waits its current wait again."""
    now = now or timezone.now()
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        rows = list(
            SetAsideRecord.objects.filter(sobject=sobject, sf_id__in=ids[start : start + IDS_PER_STATEMENT])
        )
        for row in rows:
            row.retry_after = now + retry_wait(row.attempts)
        SetAsideRecord.objects.bulk_update(rows, ["retry_after"])


def still_set_aside(sobject: str, ids: list[str], since: dt.datetime) -> dict[str, dt.datetime]:
    """Which of these ids are still set aside and were not tried since `since` (this cycle's
    window may have applied some, or tried them again), with when each was first set aside."""
    found: dict[str, dt.datetime] = {}
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        found.update(
            SetAsideRecord.objects.filter(
                sobject=sobject, sf_id__in=ids[start : start + IDS_PER_STATEMENT], last_tried_at__lt=since
            ).values_list("sf_id", "first_failed_at")
        )
    return found


def forget_missing(sobject: str, ids: Iterable[str]) -> int:
    """Records Salesforce no longer returns by id (deleted and purged, or no longer visible to the
    integration user): nothing is left to apply. Each goes with a log line that says why."""
    missing = sorted(set(ids))
    rows = SetAsideRecord.objects.filter(sobject=sobject, sf_id__in=missing)
    for row in rows:
        logger.warning(
            "%s %s is no longer set aside: Salesforce no longer returns it (deleted, or not visible "
            "to the integration user). It was set aside since %s (%d attempts): %s",
            sobject,
            row.sf_id,
            row.first_failed_at.isoformat(),
            row.attempts,
            row.reason,
        )
    deleted, _ = rows.delete()
    return deleted


def records_set_aside() -> QuerySet[SetAsideRecord]:
    """Every record set aside, the longest waiting first (status page, API, `salesforce_sync`)."""
    return SetAsideRecord.objects.order_by("first_failed_at", "sobject", "sf_id")


def set_aside_listing(limit: int) -> tuple[list[SetAsideRecord], int]:
    """The first `limit` records set aside and how many there are in all (counted only when the
    list is full: a page that shows them costs one query, not two)."""
    rows = list(records_set_aside()[:limit])
    return rows, (len(rows) if len(rows) < limit else SetAsideRecord.objects.count())
