"""Change events wake the sync; the window decides (issue P15).

A change event never writes data: it only asks for a cycle, which is today's window poll under
the lease. This module holds the rules of that hand-over, each a plain function or class that
tests can drive with numbers, and the few database reads and writes that share them between
listeners, workers and beat on every machine (the `ChangeStream` row):

1. Debounce: a burst of events becomes one wake-up (`Debouncer`).
2. Coalesce: a wake-up adds one to `wake_seq`; the cycle that takes the lease sets `served_seq`
   to it before reading Salesforce (`WakeClaim`). Wake-ups during a cycle leave `wake_seq` ahead,
   so exactly one more cycle follows it, however many listeners asked.
3. Budget: cycles caused by events take a token from a bucket sized from SALESFORCE_API_BUDGET,
   what the expensive work and the polls spend, and the cycles' median cost (`wake_bucket_size`,
   `bucket_take`): under a storm the latency grows, the budget is never overspent.
4. Replay position: a replay id is stored only after a cycle that started after its event has
   succeeded (`ReplayLedger`).
5. Hints of hard deletes: the ids of DELETE events wait in `gone_hints` for the next cycle, which
   asks Salesforce for them (`engine/deletes.py`, `hinted_gone`): a contact role deleted directly
   leaves no row and no `IsDeleted` for the window to find.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from ..models import ChangeStream, CycleTrigger, SyncCycle, SyncLease, SyncStatus
from .lock import LEASE_NAME
from .schedule import budget_view, poll_cadence

STREAM = "salesforce"
# Ids of DELETE events kept per object for the next cycle; beyond these, getDeleted and the id
# reconciliation still find the deletes, only later.
GONE_HINTS_MAX = 2000
# A listener resumes from its stored replay ids only if they were stored this recently (a running
# listener stores them about every safety poll); older, it starts at LATEST (`replay_positions`).
REPLAY_RESUME_MAX_AGE = dt.timedelta(hours=1)
# At most this many event-caused cycles in a burst (the bucket's size), and at most an hour's share.
WAKE_BURST_MAX = 30.0


# --- 1. debounce -------------------------------------------------------------------------------------
class Debouncer:
    """Trailing-edge debounce with a cap: fire `quiet` seconds after the last event, but no later
    than `longest` after the first one, so a steady trickle still wakes the sync."""

    def __init__(self, quiet: float, longest: float | None = None) -> None:
        self.quiet = quiet
        self.longest = longest if longest is not None else 4 * quiet
        self._first: float | None = None
        self._last: float | None = None

    def event(self, now: float) -> None:
        if self._first is None:
            self._first = now
        self._last = now

    def deadline(self) -> float | None:
        if self._first is None or self._last is None:
            return None
        return min(self._last + self.quiet, self._first + self.longest)

    def due(self, now: float) -> bool:
        """True once per burst, when its deadline has come."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return False
        self._first = self._last = None
        return True


# --- 2. coalesce -------------------------------------------------------------------------------------
def _stream() -> ChangeStream:
    try:
        return ChangeStream.objects.get_or_create(name=STREAM)[0]
    except IntegrityError:  # another process created it at the same moment
        return ChangeStream.objects.get(name=STREAM)


def wake_request() -> None:
    """Ask for a cycle (a change event came)."""
    _stream()
    ChangeStream.objects.filter(name=STREAM).update(
        wake_seq=F("wake_seq") + 1, wake_requested_at=timezone.now()
    )


def wake_pending() -> bool:
    """Whether a wake-up came after the start of the last cycle that took the lease."""
    return ChangeStream.objects.filter(name=STREAM, wake_seq__gt=F("served_seq")).exists()


def lease_held() -> bool:
    """Whether a cycle holds the sync lease now (it will serve or follow up every wake-up)."""
    return SyncLease.objects.filter(name=LEASE_NAME, expires_at__gt=timezone.now()).exclude(owner="").exists()


@dataclass
class WakeClaim:
    """The engine's check once it holds the lease, before it records a cycle: a poll or the
    operator's cycle serves every wake-up so far; a cycle for a wake-up runs only when one is
    still pending and the wake-up budget has a token. `outcome` says what happened."""

    trigger: str
    outcome: str = ""
    retry_in: float | None = None

    def __call__(self) -> bool:
        if self.trigger != CycleTrigger.WAKE:
            ChangeStream.objects.filter(name=STREAM).update(served_seq=F("wake_seq"))
            self.outcome = "run"
            return True
        now = timezone.now()
        with transaction.atomic():
            stream = ChangeStream.objects.select_for_update().filter(name=STREAM).first()
            if stream is None or stream.wake_seq <= stream.served_seq:
                self.outcome = "served"
                return False
            take = bucket_take(
                tokens=stream.wake_tokens, at=stream.wake_tokens_at, now=now, size=current_wake_bucket()
            )
            stream.wake_tokens, stream.wake_tokens_at = take.tokens, now
            if take.granted:
                stream.served_seq = stream.wake_seq
            stream.save(update_fields=["wake_tokens", "wake_tokens_at", "served_seq"])
        self.outcome = "run" if take.granted else "budget"
        self.retry_in = take.wait
        return take.granted


# --- 3. budget ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketSize:
    """Tokens added per second and the most the bucket holds."""

    rate: float
    capacity: float


@dataclass(frozen=True)
class BucketTake:
    granted: bool
    tokens: float
    # Seconds until the next token (None: the budget leaves none for event-caused cycles).
    wait: float | None


def wake_bucket_size(
    *, budget_per_day: float | None, expensive_calls: float, steady_calls: float, poll_seconds: float
) -> BucketSize | None:
    """The bucket for event-caused cycles, or None (no cap) while the org's limit is not known yet.

    1. The day's budget is SALESFORCE_API_BUDGET of the org's daily limit.
    2. Off it come the expensive work of the last 24 hours and the polls at the current cadence,
       each poll costing the median steady cycle.
    3. What is left, divided by that median, is the day's event-caused cycles.
    4. The bucket holds an hour's share (at least one, at most WAKE_BURST_MAX) and refills the rest
       evenly over the day, so the day's total never exceeds the share."""
    if budget_per_day is None:
        return None
    cost = max(1.0, steady_calls)
    polls = 86400.0 / max(poll_seconds, 1.0) * cost
    cycles = max(0.0, (budget_per_day - expensive_calls - polls) / cost)
    if cycles < 1:
        return BucketSize(rate=0.0, capacity=0.0)
    capacity = min(WAKE_BURST_MAX, max(1.0, cycles / 24))
    return BucketSize(rate=max(0.0, cycles - capacity) / 86400.0, capacity=capacity)


def bucket_take(
    *, tokens: float | None, at: dt.datetime | None, now: dt.datetime, size: BucketSize | None
) -> BucketTake:
    """Take one token: the bucket refills at `size.rate` up to `size.capacity` (full when never
    used). No size: no cap."""
    if size is None:
        return BucketTake(granted=True, tokens=0.0, wait=None)
    if tokens is None or at is None:
        level = size.capacity
    else:
        level = min(size.capacity, tokens + size.rate * max(0.0, (now - at).total_seconds()))
    if level >= 1:
        return BucketTake(granted=True, tokens=level - 1, wait=None)
    wait = (1 - level) / size.rate if size.rate > 0 else None
    return BucketTake(granted=False, tokens=level, wait=wait)


def current_wake_bucket() -> BucketSize | None:
    view = budget_view()
    return wake_bucket_size(
        budget_per_day=view.budget_per_day,
        expensive_calls=view.expensive_calls,
        steady_calls=view.steady_calls,
        poll_seconds=poll_cadence().seconds,
    )


# --- 4. replay position ------------------------------------------------------------------------------
@dataclass
class ReplayLedger:
    """Replay ids seen but not stored yet, each with the newest cycle id at the moment it was seen.

    A cycle with a higher id started after the event; once such a cycle has succeeded, the change
    behind the event is in the database (the window poll read it), and the id may be stored: a
    listener resuming from it misses no wake-up it still needs."""

    _pending: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)

    def note(self, topic: str, replay_id: bytes, newest_cycle_id: int) -> None:
        entries = self._pending.setdefault(topic, [])
        if entries and entries[-1][0] == newest_cycle_id:
            entries[-1] = (newest_cycle_id, replay_id)  # only the latest of a run of ids matters
        else:
            entries.append((newest_cycle_id, replay_id))

    def confirmed(self, newest_succeeded_cycle_id: int) -> dict[str, bytes]:
        """The newest storable id per topic, now that cycle `newest_succeeded_cycle_id` has
        succeeded; they leave the ledger."""
        ready: dict[str, bytes] = {}
        for topic, entries in self._pending.items():
            while entries and entries[0][0] < newest_succeeded_cycle_id:
                ready[topic] = entries.pop(0)[1]
        return ready

    def forget(self, topic: str) -> None:
        self._pending.pop(topic, None)

    def forget_all(self, topics: list[str]) -> None:
        for topic in topics:
            self.forget(topic)


def newest_cycle_id() -> int:
    return int(SyncCycle.objects.aggregate(newest=Max("id"))["newest"] or 0)


def newest_succeeded_cycle_id() -> int:
    return int(
        SyncCycle.objects.filter(status=SyncStatus.SUCCEEDED).aggregate(newest=Max("id"))["newest"] or 0
    )


def replay_positions(now: dt.datetime | None = None) -> dict[str, bytes]:
    """Where to resume, per topic (a topic without one starts at LATEST). Positions stored longer
    ago than REPLAY_RESUME_MAX_AGE are not used: replaying up to 72 hours of events would only spend
    the org's daily event deliveries on wake-ups, when the start's catch-up cycle (the watermark)
    already covers whatever changed meanwhile."""
    stream = _stream()
    now = now or timezone.now()
    if stream.replay_stored_at is None or now - stream.replay_stored_at > REPLAY_RESUME_MAX_AGE:
        return {}
    stored = stream.replay_ids or {}
    positions = {}
    for topic, hex_id in stored.items():
        try:
            positions[topic] = bytes.fromhex(hex_id)
        except (TypeError, ValueError):
            continue  # a corrupted row: that topic starts at LATEST, and the catch-up cycle runs
    return positions


def replay_store(updates: dict[str, bytes]) -> None:
    if not updates:
        return
    _stream()
    with transaction.atomic():
        stream = ChangeStream.objects.select_for_update().get(name=STREAM)
        stream.replay_ids = {**(stream.replay_ids or {}), **{t: r.hex() for t, r in updates.items()}}
        stream.replay_stored_at = timezone.now()
        stream.save(update_fields=["replay_ids", "replay_stored_at"])


def replay_forget(topic: str) -> None:
    """An expired or corrupted id: the topic starts at LATEST next time."""
    _stream()
    with transaction.atomic():
        stream = ChangeStream.objects.select_for_update().get(name=STREAM)
        stream.replay_ids = {t: r for t, r in (stream.replay_ids or {}).items() if t != topic}
        stream.save(update_fields=["replay_ids"])


# --- 5. hints of hard deletes ------------------------------------------------------------------------
def gone_hints_add(hints: dict[str, list[str]]) -> None:
    """Keep ids of DELETE events (or hints a failed cycle gives back) for the next cycle."""
    hints = {sobject: ids for sobject, ids in hints.items() if ids}
    if not hints:
        return
    _stream()
    with transaction.atomic():
        stream = ChangeStream.objects.select_for_update().get(name=STREAM)
        stored = dict(stream.gone_hints or {})
        for sobject, ids in hints.items():
            merged = dict.fromkeys([*stored.get(sobject, []), *ids])
            stored[sobject] = list(merged)[:GONE_HINTS_MAX]
        stream.gone_hints = stored
        stream.save(update_fields=["gone_hints"])


def gone_hints_take() -> dict[str, list[str]]:
    """The hints waiting, which leave the row: the cycle that takes them checks them or gives
    them back (`gone_hints_add`)."""
    with transaction.atomic():
        stream = ChangeStream.objects.select_for_update().filter(name=STREAM).first()
        if stream is None or not stream.gone_hints:
            return {}
        taken = {
            str(s): [str(i) for i in ids]
            for s, ids in dict(stream.gone_hints).items()
            if isinstance(ids, list)
        }
        stream.gone_hints = {}
        stream.save(update_fields=["gone_hints"])
    return taken
