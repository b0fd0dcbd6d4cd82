"""The change-event listener behind `manage.py salesforce_listen` (issue P15): it wakes the sync
and never writes synced data.

One loop on the main thread reads what the Subscribe streams (one per topic, each on its own
thread, `salesforce/pubsub.py`) hand over:

1. An event or a keepalive notes its replay id (`ReplayLedger`) and feeds the watchdog; an event
   also feeds the debounce, whose deadline asks for one cycle (`wake_request`) and queues the
   `sync_wake` task (or wakes the in-process runner) unless a cycle holds the lease, which then
   follows up by itself.
2. Every second: replay ids whose covering cycle has succeeded are stored; a wake-up still pending
   with the lease free is queued again (a lost message, an operator's cycle, a budget wait); the
   listener's row (`ChangeListener`: subscribed since, last event and keepalive, why it is down)
   is written every few seconds so beat on any machine chooses the cadence.
3. A stream that fails or goes silent past the keepalive period plus its margin is rebuilt:
   UNAUTHENTICATED logs in again at once; an expired replay id starts that topic at LATEST with
   a cycle; UNAVAILABLE, INTERNAL or an ended stream back off exponentially with jitter up to a
   cap; a stream that is not available (CDC off for an object, no permission, deliveries used up)
   is tried again on a slow timer. Meanwhile beat polls at SALESFORCE_SYNC_INTERVAL. A rebuilt
   stream resumes from the newest replay id this process saw and asks for one cycle, whose window
   covers whatever the gap between the two streams held.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from ..models import ChangeListener
from ..salesforce.auth import SalesforceConfig
from ..salesforce.exceptions import (
    ChangeStreamAuthExpired,
    ChangeStreamError,
    ChangeStreamReplayInvalid,
    ChangeStreamTransient,
    ChangeStreamUnavailable,
    SalesforceAuthError,
    SalesforceError,
)
from ..salesforce.pubsub import ChangeEvent, Keepalive, PubSubClient, StreamEnded, StreamItem, Subscription
from .objects import SYNCED_OBJECTS
from .schedule import stream_silence_limit
from .wake import (
    Debouncer,
    ReplayLedger,
    gone_hints_add,
    lease_held,
    newest_cycle_id,
    newest_succeeded_cycle_id,
    replay_forget,
    replay_positions,
    replay_store,
    wake_pending,
    wake_request,
)

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
HEALTH_WRITE_SECONDS = 2.0
NUDGE_LONGEST_SECONDS = 30.0
# Change types whose record ids the next cycle asks Salesforce about (wake.py, hints of hard deletes).
DELETE_TYPES = frozenset({"DELETE", "GAP_DELETE"})


class TopicRefused(Exception):
    """Some topics' streams were refused while others run (`_stream` carries on without them)."""

    def __init__(self, refusals: dict[str, ChangeStreamError]) -> None:
        super().__init__(" ".join(str(error) for error in refusals.values()))
        self.refusals = refusals


class Backoff:
    """Capped exponential backoff with jitter: base, 2·base, 4·base … up to `cap`, each delay drawn
    from its upper half so several listeners do not retry in step."""

    def __init__(self, base: float, cap: float, rand: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self.rand = base, cap, rand
        self.attempt = 0

    def next(self) -> float:
        # The exponent stops growing (a stream down for days must not overflow a float).
        delay = min(self.cap, self.base * 2 ** min(self.attempt, 32))
        self.attempt += 1
        return delay * (0.5 + self.rand() / 2)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class ListenerHealth:
    """This listener's row in memory; `write()` stores it (`ChangeListener`)."""

    listener_id: str
    started_at: dt.datetime
    subscribed_since: dt.datetime | None = None
    last_event_at: dt.datetime | None = None
    last_keepalive_at: dt.datetime | None = None
    down_reason: str = ""
    down_since: dt.datetime | None = None
    counted_on: dt.date | None = None
    events_today: int = 0
    wakeups_today: int = 0
    stopped_at: dt.datetime | None = None
    _dirty: bool = field(default=True, repr=False)

    def _count_day(self, now: dt.datetime) -> None:
        if self.counted_on != now.date():
            self.counted_on, self.events_today, self.wakeups_today = now.date(), 0, 0

    def subscribed(self, now: dt.datetime) -> None:
        self.subscribed_since, self.down_reason, self.down_since, self._dirty = now, "", None, True

    def down(self, reason: str, now: dt.datetime) -> None:
        if self.down_reason != reason or self.subscribed_since is not None:
            self.down_since = self.down_since if self.down_reason else now
            self.subscribed_since, self.down_reason, self._dirty = None, reason, True

    def event(self, now: dt.datetime) -> None:
        self._count_day(now)
        self.last_event_at, self.events_today = now, self.events_today + 1

    def keepalive(self, now: dt.datetime) -> None:
        self.last_keepalive_at = now

    def wakeup(self, now: dt.datetime) -> None:
        self._count_day(now)
        self.wakeups_today += 1

    def write(self, now: dt.datetime) -> None:
        ChangeListener.objects.update_or_create(
            listener_id=self.listener_id,
            defaults={
                "hostname": socket.gethostname(),
                "started_at": self.started_at,
                "seen_at": now,
                "subscribed_since": self.subscribed_since,
                "last_event_at": self.last_event_at,
                "last_keepalive_at": self.last_keepalive_at,
                "down_reason": self.down_reason,
                "down_since": self.down_since,
                "counted_on": self.counted_on,
                "events_today": self.events_today,
                "wakeups_today": self.wakeups_today,
                "stopped_at": self.stopped_at,
            },
        )
        self._dirty = False


class InProcessCycles:
    """Runs the woken cycles on a thread of this process (`--in-process`: no worker needed)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._wanted = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wake-cycles", daemon=True)
        self._thread.start()

    def dispatch(self) -> None:
        self._wanted.set()

    def _run(self) -> None:
        from .service import sync_wake_run  # the engine, only when cycles run here

        try:
            while not self._stop.is_set():
                if not self._wanted.wait(timeout=TICK_SECONDS):
                    continue
                self._wanted.clear()
                close_old_connections()  # a connection broken by a database restart is replaced
                try:
                    sync_wake_run()
                except Exception:  # a cycle's failure is the cycle's (recorded); the thread goes on
                    logger.exception("A woken cycle failed")
        finally:
            connection.close()

    def join(self) -> None:
        self._thread.join(timeout=30)


def queue_wake() -> None:
    """Queue one `sync_wake` task on the `sync` queue (a worker runs it)."""
    from .tasks import sync_wake

    sync_wake.apply_async(expires=60)


class Listener:
    """The listener's loop (module docstring). `stop` ends it cleanly."""

    def __init__(
        self,
        *,
        stop: threading.Event,
        say: Callable[[str], None],
        dispatch: Callable[[], None],
        topics: list[str] | None = None,
    ) -> None:
        self.stop = stop
        self.say = say
        self.dispatch_cycle = dispatch
        self.topics = list(topics or settings.SALESFORCE_CDC_TOPICS)
        self.config = SalesforceConfig.from_settings()
        self.client = PubSubClient(self.config, settings.SALESFORCE_PUBSUB_URL)
        self.inbox: queue.Queue[StreamItem] = queue.Queue()
        self.ledger = ReplayLedger()
        self.debounce = Debouncer(settings.SALESFORCE_CDC_DEBOUNCE_MS / 1000.0)
        self.backoff = Backoff(1.0, settings.SALESFORCE_CDC_BACKOFF_MAX_SECONDS)
        self.health = ListenerHealth(
            listener_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            started_at=timezone.now(),
        )
        # The newest replay id seen per topic (events and keepalives), where a rebuilt stream resumes.
        self.seen: dict[str, bytes] = {}
        # Whether the next subscription asks for a cycle (the gap since the last one, or the start's).
        self.rebuilding = True
        self._subscribed_at = 0.0
        self._streamed: set[str] = set()  # the topics of the last stream
        self._next_tick = 0.0
        self._next_write = 0.0
        self._last_dispatch = 0.0
        self._nudges = 0

    # --- the outer loop: (re)subscribe ---------------------------------------------------------------
    def run(self) -> None:
        self.say(
            f"Listening for change events on {', '.join(self.topics)} at {settings.SALESFORCE_PUBSUB_URL}; "
            "they wake the sync, which stays the only writer."
        )
        started = False
        try:
            while not self.stop.is_set():
                try:
                    if not started:
                        self._prune_old_rows()
                        # The catch-up cycle: whatever changed while no listener ran. The first
                        # subscription asks for one more (`rebuilding`): a change committed between
                        # this cycle's read and the subscription has no event of its own.
                        self._wake()
                        started = True
                    self._stream()
                except ChangeStreamReplayInvalid as error:
                    self._down(error)
                    self.ledger.forget_all(self._topics_of(error))
                    for topic in self._topics_of(error):
                        self.seen.pop(topic, None)
                        with contextlib.suppress(DatabaseError):  # else the next round meets it again
                            replay_forget(topic)
                    # The new stream's wake-up (a rebuild's): the watermark bounds what the lost
                    # position could have missed. A server that keeps refusing waits a backoff step.
                    self.rebuilding = True
                    self._idle(self.backoff.next())
                except ChangeStreamAuthExpired as error:
                    self._down(error)
                    self.client.close()  # the next round logs in again at once
                    if self.backoff.attempt:
                        self._idle(self.backoff.next())
                    else:
                        self.backoff.attempt += 1
                except (ChangeStreamUnavailable, SalesforceAuthError) as error:
                    self._down(error)
                    self.say(
                        f"Change events are not available: {error} Polling meanwhile; trying again later."
                    )
                    self._idle(settings.SALESFORCE_CDC_RETRY_SECONDS)
                except (ChangeStreamTransient, SalesforceError) as error:
                    self._down(error)
                    self._idle(self.backoff.next())
                except DatabaseError as error:
                    # A database restart or failover: the listener waits and goes on instead of
                    # exiting (under honcho, one process ending stops the whole stack).
                    logger.warning("The database could not be reached (%s); trying again shortly.", error)
                    self._database_pause()
        finally:
            try:
                self.health.down("The listener stopped.", timezone.now())
                self.health.stopped_at = timezone.now()
                self._write_health(force=True)
            except DatabaseError as error:
                logger.warning("The listener's stop could not be recorded (%s).", error)

    def _database_pause(self) -> None:
        """Drop the broken connection (the next query opens a new one) and wait a backoff step."""
        with contextlib.suppress(DatabaseError):
            connection.close()
        self._idle(self.backoff.next())

    def _topics_of(self, error: ChangeStreamError) -> list[str]:
        named = [t for t in self.topics if t in str(error)]
        return named or self.topics

    def _down(self, error: Exception) -> None:
        logger.warning("Change stream down: %s", error)
        self.health.down(str(error), timezone.now())
        try:
            self._write_health(force=True)
        except DatabaseError as db_error:  # said again by the next second's chores
            logger.warning("The listener's state could not be recorded (%s).", db_error)
            close_old_connections()

    def _idle(self, seconds: float) -> None:
        """Wait (for a retry), still doing the second's chores."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.stop.wait(min(TICK_SECONDS, max(0.0, deadline - time.monotonic())))
            self._tick(time.monotonic())

    # --- one stream's life -------------------------------------------------------------------------
    def _stream(self) -> None:
        """Subscribe to every topic the org offers; a topic it does not offer (CDC not enabled for
        that object) is named as the reason the stream is down, the others still wake the sync,
        and the whole stream is rebuilt after the slow timer to try it again."""
        self.client.ensure_login()
        available: list[str] = []
        missing: list[ChangeStreamError] = []
        for topic in self.topics:
            try:
                self.client.topic(topic)
                available.append(topic)
            except ChangeStreamUnavailable as error:
                missing.append(error)
        if not available:
            raise missing[0]
        # Within this process the newest ids seen (their wake-ups are asked for already); the stored
        # ones after a restart.
        positions = {**replay_positions(), **self.seen}
        self.inbox = queue.Queue()
        subscriptions: dict[str, Subscription] = {}
        try:
            for topic in available:
                subscriptions[topic] = self.client.subscribe(topic, positions.get(topic), self.inbox.put)
            rebuild_at = None
            if missing:
                rebuild_at = self._partly_available(missing)
            else:
                self.health.subscribed(timezone.now())
            self._write_health(force=True)
            self._subscribed_at = time.monotonic()
            self.say(f"Subscribed to {', '.join(available)}.")
            # The gap between two streams (the window finds what it held), and a topic newly
            # subscribed at LATEST (no position: nothing replays what changed before it).
            newly = [t for t in available if t not in positions and t not in self._streamed]
            if self.rebuilding or newly:
                self._wake()
            self._streamed = set(available)
            self.rebuilding = True
            while True:
                try:
                    self._consume(list(subscriptions), rebuild_at)
                    # The slow timer's planned rebuild: the new streams resume where these
                    # stopped, so no gap needs a cycle (a cycle each time would cost an API
                    # call every SALESFORCE_CDC_RETRY_SECONDS while a topic is unavailable).
                    self.rebuilding = False
                    return
                except TopicRefused as refused:
                    # Topics whose Subscribe was refused (no permission, not selected): the others
                    # keep waking the sync until the slow timer tries them again.
                    for topic, refusal in refused.refusals.items():
                        subscriptions.pop(topic).cancel()
                        missing.append(refusal)
                    retry_at = self._partly_available(missing)
                    rebuild_at = min(rebuild_at, retry_at) if rebuild_at is not None else retry_at
        finally:
            for subscription in subscriptions.values():
                subscription.cancel()

    def _partly_available(self, missing: list[ChangeStreamError]) -> float:
        """Say which topics are not available; returns when the whole stream is tried again."""
        reason = " ".join(str(error) for error in missing)
        self.health.down(f"{reason} The other topics still wake the sync.", timezone.now())
        self._write_health(force=True)
        self.say(f"Change events are partly available: {reason}")
        return time.monotonic() + settings.SALESFORCE_CDC_RETRY_SECONDS

    def _consume(self, topics: list[str], rebuild_at: float | None = None) -> None:
        """Until the stream fails (an exception) or `rebuild_at` comes (a plain return). Each
        topic has a stream of its own, and each must be heard from (an event or a keepalive)
        within the silence limit: one stream gone quiet is not covered by the others' keepalives."""
        silence_limit = stream_silence_limit()
        heard = dict.fromkeys(topics, time.monotonic())
        while not self.stop.is_set():
            now = time.monotonic()
            if rebuild_at is not None and now >= rebuild_at:
                return
            quietest = min(heard, key=lambda topic: heard[topic])
            deadlines = [
                self._next_tick,
                heard[quietest] + silence_limit,
                *([rebuild_at] if rebuild_at else []),
            ]
            if (debounce := self.debounce.deadline()) is not None:
                deadlines.append(debounce)
            try:
                first = self.inbox.get(timeout=max(0.001, min(deadlines) - now))
            except queue.Empty:
                batch: list[StreamItem] = []
            else:
                # What is queued now arrived before the cycle id is read below (ReplayLedger).
                batch = [first] + [self.inbox.get_nowait() for _ in range(self.inbox.qsize())]
            now = time.monotonic()
            if batch:
                for item in batch:
                    heard[item.topic] = now
                ended = self._handle(batch, now)
                if ended:
                    self._ended(ended, heard)
            if self.debounce.due(now):
                self._wake()
            quietest = min(heard, key=lambda topic: heard[topic])
            if now - heard[quietest] > silence_limit:
                raise ChangeStreamTransient(
                    f"No event and no keepalive on {quietest} for {silence_limit:g} s (the keepalive "
                    "period plus a margin): the stream is rebuilt."
                )
            self._tick(now)

    def _ended(self, ended: list[StreamEnded], heard: dict[str, float]) -> None:
        """Streams that ended: every one a refusal while other topics still run → those topics are
        dropped (`TopicRefused`); otherwise the whole stream is rebuilt (the first other error).
        The events of the same batch get their wake-up first, not after the rebuild's backoff."""
        if self.debounce.deadline() is not None:
            self.debounce.due(float("inf"))
            self._wake()
        refusals: dict[str, ChangeStreamError] = {
            e.topic: e.error for e in ended if isinstance(e.error, ChangeStreamUnavailable)
        }
        others = [e.error for e in ended if not isinstance(e.error, ChangeStreamUnavailable)]
        if others:
            raise others[0]
        for topic in refusals:
            heard.pop(topic, None)
        if not heard:
            raise next(iter(refusals.values()))
        raise TopicRefused(refusals)

    def _handle(self, batch: list[StreamItem], now: float) -> list[StreamEnded]:
        """Note the batch's events and keepalives; returns the streams that ended in it (handled
        after the others, so no event of another topic in the same batch is lost)."""
        newest = newest_cycle_id()
        at = timezone.now()
        deleted: dict[str, list[str]] = {}
        ended: list[StreamEnded] = []
        for item in batch:
            if isinstance(item, StreamEnded):
                ended.append(item)
            elif isinstance(item, ChangeEvent):
                if item.change_type in DELETE_TYPES and item.entity in SYNCED_OBJECTS:
                    deleted.setdefault(item.entity, []).extend(item.record_ids)
                self.health.event(at)
                # A channel such as /data/ChangeEvents carries other objects too: they wake
                # nothing. An event that could not be decoded (no entity) still wakes.
                if not item.entity or item.entity in SYNCED_OBJECTS:
                    self.debounce.event(now)
                logger.debug("%s %s %s", item.entity, item.change_type, ",".join(item.record_ids))
        # Before the replay ids move on: the cycle the wake-up brings checks these ids (a hard
        # delete shows nowhere else), and a failed write leaves the position where they replay.
        gone_hints_add(deleted)
        for item in batch:
            if isinstance(item, ChangeEvent):
                self.ledger.note(item.topic, item.replay_id, newest)
                self.seen[item.topic] = item.replay_id
            elif isinstance(item, Keepalive):
                if item.latest_replay_id:
                    self.ledger.note(item.topic, item.latest_replay_id, newest)
                    self.seen[item.topic] = item.latest_replay_id
                self.health.keepalive(at)
        # The backoff starts afresh only once a stream has stayed up for its cap: a topic that
        # fails right after each Subscribe must not resubscribe every second.
        if not ended and time.monotonic() - self._subscribed_at >= self.backoff.cap:
            self.backoff.reset()
        return ended

    # --- wake-ups and the second's chores ---------------------------------------------------------
    def _wake(self) -> None:
        self._nudges = 0
        wake_request()
        self.health.wakeup(timezone.now())
        if not lease_held():  # a running cycle follows up by itself (wake.py)
            self._dispatch()

    def _dispatch(self) -> None:
        self._last_dispatch = time.monotonic()
        try:
            self.dispatch_cycle()
        except Exception as error:  # the broker is down: the next second's nudge tries again
            logger.warning("Could not queue the woken cycle: %s", error)

    def _tick(self, now: float) -> None:
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_SECONDS
        try:
            stored = self.ledger.confirmed(newest_succeeded_cycle_id())
            replay_store(stored)
            # A wake-up still pending with the lease free: the queued task was lost, or the
            # wake-up budget had no token. Nudged again after 1, 2, 4 … up to 30 s, so a spent
            # budget does not queue a task every second.
            nudge_after = min(NUDGE_LONGEST_SECONDS, TICK_SECONDS * 2 ** min(self._nudges, 8))
            if now - self._last_dispatch >= nudge_after and wake_pending() and not lease_held():
                self._nudges += 1
                self._dispatch()
            self._write_health()
        except DatabaseError as error:  # a busy or restarting database: the next second tries again
            logger.warning("Listener bookkeeping postponed: %s", error)
            close_old_connections()

    def _write_health(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_write:
            return
        self._next_write = now + HEALTH_WRITE_SECONDS
        self.health.write(timezone.now())

    def _prune_old_rows(self) -> None:
        """Rows of listeners gone for a day (restarts leave one each)."""
        ChangeListener.objects.filter(seen_at__lt=timezone.now() - dt.timedelta(days=1)).delete()
