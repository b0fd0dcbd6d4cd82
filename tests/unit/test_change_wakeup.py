"""The pure rules of the change-event wake-up (issue P15): debounce, coalescing, the wake-up
budget, the replay-store rule, the cadence, flow control, backoff and gRPC errors in words."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from opportunities.models import ChangeListener, ChangeStream, CycleTrigger, SyncCycle, SyncStatus
from opportunities.salesforce.auth import org_id_from_identity_url
from opportunities.salesforce.exceptions import (
    ChangeStreamAuthExpired,
    ChangeStreamReplayInvalid,
    ChangeStreamTransient,
    ChangeStreamUnavailable,
)
from opportunities.salesforce.pubsub import (
    REPLAY_CORRUPTED,
    ChangeEvent,
    Keepalive,
    StreamEnded,
    stream_error,
    top_up,
)
from opportunities.sync.listener import Backoff, Listener
from opportunities.sync.schedule import cadence_choice
from opportunities.sync.wake import (
    BucketSize,
    Debouncer,
    ReplayLedger,
    WakeClaim,
    bucket_take,
    gone_hints_add,
    gone_hints_take,
    replay_positions,
    replay_store,
    wake_bucket_size,
    wake_pending,
    wake_request,
)
from tests.processes import wait_until

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


# --- replay positions and hints of deletes ----------------------------------------------------------
@pytest.mark.django_db
def test_a_listener_resumes_from_a_recent_position_but_not_from_one_hours_old():
    replay_store({"/data/OpportunityChangeEvent": b"\x00\x07"})
    stored_at = ChangeStream.objects.get().replay_stored_at
    assert replay_positions(stored_at + dt.timedelta(minutes=59)) == {
        "/data/OpportunityChangeEvent": b"\x00\x07"
    }
    # Down for longer: LATEST (and the start's catch-up cycle) instead of replaying up to 72 hours.
    assert replay_positions(stored_at + dt.timedelta(minutes=61)) == {}


@pytest.mark.django_db
def test_hints_of_deletes_merge_stay_bounded_and_are_taken_once():
    gone_hints_add({"OpportunityContactRole": ["00K1", "00K2"], "Lead": []})
    gone_hints_add({"OpportunityContactRole": ["00K2", "00K3"]})
    gone_hints_add({"Opportunity": [f"006{n}" for n in range(5000)]})
    taken = gone_hints_take()
    assert taken["OpportunityContactRole"] == ["00K1", "00K2", "00K3"]
    assert "Lead" not in taken
    assert len(taken["Opportunity"]) == 2000  # the rest is getDeleted's and the reconcile's
    assert gone_hints_take() == {}


# --- debounce ------------------------------------------------------------------------------------------
def test_a_burst_of_events_becomes_one_wakeup_after_the_quiet_time():
    debounce = Debouncer(quiet=0.03)
    for t in (0.0, 0.01, 0.02):
        debounce.event(t)
    assert not debounce.due(0.04)
    assert debounce.due(0.05)
    assert not debounce.due(0.06), "one wake-up per burst"


def test_a_steady_trickle_still_wakes_the_sync_by_the_cap():
    debounce = Debouncer(quiet=0.03, longest=0.1)
    t = 0.0
    while not debounce.due(t):
        debounce.event(t)
        t += 0.02
    assert t <= 0.12


def test_no_event_no_wakeup():
    assert not Debouncer(quiet=0.03).due(100.0)


# --- coalescing (the ChangeStream row) -------------------------------------------------------------------
@pytest.mark.django_db
def test_wakeups_during_a_cycle_cause_exactly_one_more_cycle():
    wake_request()
    assert wake_pending()
    assert WakeClaim(CycleTrigger.WAKE)(), "the first cycle runs"
    assert not wake_pending()
    for _ in range(5):  # events while that cycle runs, from two listeners
        wake_request()
    assert WakeClaim(CycleTrigger.WAKE)(), "one more cycle after it"
    second = WakeClaim(CycleTrigger.WAKE)
    assert not second() and second.outcome == "served", "not one each"


@pytest.mark.django_db
def test_a_poll_serves_the_wakeups_before_it():
    wake_request()
    assert WakeClaim(CycleTrigger.POLL)()
    claim = WakeClaim(CycleTrigger.WAKE)
    assert not claim() and claim.outcome == "served"


@pytest.mark.django_db
def test_an_exhausted_wake_budget_leaves_the_wakeup_pending():
    SyncCycle.objects.create(
        started_at=NOW, ended_at=NOW, status=SyncStatus.SUCCEEDED, api_calls=1, api_usage_max=100
    )
    wake_request()
    ChangeStream.objects.update(wake_tokens=0.0, wake_tokens_at=dt.datetime.now(dt.UTC))
    claim = WakeClaim(CycleTrigger.WAKE)
    assert not claim() and claim.outcome == "budget"
    assert wake_pending(), "the safety poll (or a later token) still serves it"


# --- the wake-up budget ---------------------------------------------------------------------------------
def test_the_bucket_leaves_what_polls_and_expensive_work_spend():
    size = wake_bucket_size(budget_per_day=10_000, expensive_calls=1_000, steady_calls=2, poll_seconds=60)
    assert size is not None
    # 10,000 - 1,000 - 1,440 polls x 2 calls = 6,120 calls = 3,060 cycles a day.
    assert size.capacity == pytest.approx(30)
    assert size.capacity + size.rate * 86400 == pytest.approx(3060)


def test_no_bucket_is_left_when_the_polls_spend_the_budget():
    size = wake_bucket_size(budget_per_day=1_000, expensive_calls=0, steady_calls=1, poll_seconds=60)
    assert size == BucketSize(rate=0.0, capacity=0.0)
    take = bucket_take(tokens=None, at=None, now=NOW, size=size)
    assert not take.granted and take.wait is None


def test_an_unknown_limit_puts_no_cap_yet():
    assert wake_bucket_size(budget_per_day=None, expensive_calls=0, steady_calls=1, poll_seconds=60) is None
    assert bucket_take(tokens=0.0, at=NOW, now=NOW, size=None).granted


def test_a_storm_never_takes_more_tokens_than_the_bucket_gives():
    size = BucketSize(rate=0.5, capacity=3)
    tokens, at, granted = None, None, 0
    for step in range(200):  # a wake-up every 100 ms for 20 s
        now = NOW + dt.timedelta(milliseconds=100 * step)
        take = bucket_take(tokens=tokens, at=at, now=now, size=size)
        tokens, at = take.tokens, now
        granted += take.granted
        if not take.granted:
            assert take.wait is not None and take.wait > 0
    assert granted <= 3 + 0.5 * 20
    assert granted >= 10


# --- the replay-store rule -------------------------------------------------------------------------------
def test_a_replay_id_is_stored_only_after_a_cycle_that_started_after_it_succeeded():
    ledger = ReplayLedger()
    ledger.note("/data/OpportunityChangeEvent", b"\x01", newest_cycle_id=7)  # cycle 7 was running
    assert ledger.confirmed(7) == {}, "the running cycle started before the event"
    ledger.note("/data/OpportunityChangeEvent", b"\x02", newest_cycle_id=8)
    assert ledger.confirmed(8) == {"/data/OpportunityChangeEvent": b"\x01"}
    assert ledger.confirmed(9) == {"/data/OpportunityChangeEvent": b"\x02"}
    assert ledger.confirmed(10) == {}


def test_only_the_newest_id_per_topic_is_stored():
    ledger = ReplayLedger()
    for replay in (b"\x01", b"\x02", b"\x03"):
        ledger.note("/data/LeadChangeEvent", replay, newest_cycle_id=1)
    ledger.note("/data/ContactChangeEvent", b"\x09", newest_cycle_id=1)
    assert ledger.confirmed(2) == {"/data/LeadChangeEvent": b"\x03", "/data/ContactChangeEvent": b"\x09"}


# --- the cadence ------------------------------------------------------------------------------------------
def listener(**fields) -> ChangeListener:
    defaults = {"listener_id": "a", "hostname": "h", "started_at": NOW, "seen_at": NOW}
    return ChangeListener(**{**defaults, **fields})


def cadence(listeners, cdc="auto"):
    return cadence_choice(
        cdc=cdc, listeners=listeners, now=NOW, sync_interval=5, safety_interval=60, silence_limit=300
    )


def test_a_healthy_stream_polls_at_the_safety_interval():
    choice = cadence([listener(subscribed_since=NOW - dt.timedelta(seconds=10))])
    assert choice.seconds == 60 and choice.stream_healthy
    assert "healthy" in choice.reason


def test_a_stream_down_polls_at_the_sync_interval_and_says_why():
    choice = cadence([listener(down_reason="The org's daily event deliveries are used up.")])
    assert choice.seconds == 5 and not choice.stream_healthy
    assert "daily event deliveries are used up" in choice.reason


def test_a_silent_stream_or_no_listener_polls_at_the_sync_interval():
    silent = listener(subscribed_since=NOW - dt.timedelta(seconds=400))
    assert cadence([silent]).seconds == 5
    assert "no change listener" in cadence([]).reason
    stopped = listener(subscribed_since=NOW, stopped_at=NOW)
    assert cadence([stopped]).seconds == 5


def test_cdc_off_polls_as_before():
    choice = cadence([listener(subscribed_since=NOW)], cdc="off")
    assert choice.seconds == 5 and "SALESFORCE_CDC is off" in choice.reason


# --- flow control, backoff, errors in words ------------------------------------------------------------------
def test_events_stay_requested():
    assert top_up(100) == 0
    assert top_up(50) == 0
    assert top_up(49) == 51
    assert top_up(0) == 100


def test_backoff_stays_at_its_cap_however_long_the_stream_stays_down():
    backoff = Backoff(1.0, 60.0, rand=lambda: 1.0)
    for _ in range(5000):
        delay = backoff.next()
    assert delay == 60.0


def test_backoff_doubles_up_to_its_cap_with_jitter():
    backoff = Backoff(1.0, 60.0, rand=lambda: 1.0)
    assert [backoff.next() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    low = Backoff(1.0, 60.0, rand=lambda: 0.0)
    assert low.next() == 0.5
    backoff.reset()
    assert backoff.next() == 1


@pytest.mark.parametrize(
    ("status", "error_code", "kind", "words"),
    [
        (
            "UNAUTHENTICATED",
            "sfdc.platform.eventbus.grpc.service.auth.error",
            ChangeStreamAuthExpired,
            "logs in again",
        ),
        ("INVALID_ARGUMENT", REPLAY_CORRUPTED, ChangeStreamReplayInvalid, "no longer available"),
        (
            "INVALID_ARGUMENT",
            "sfdc.platform.eventbus.grpc.subscription.entity.not.selected",
            ChangeStreamUnavailable,
            "Setup > Change Data Capture",
        ),
        (
            "NOT_FOUND",
            "sfdc.platform.eventbus.grpc.topic.not.found",
            ChangeStreamUnavailable,
            "not available",
        ),
        ("PERMISSION_DENIED", "", ChangeStreamUnavailable, "View All"),
        (
            "RESOURCE_EXHAUSTED",
            "sfdc.platform.eventbus.grpc.subscription.limit.exceeded",
            ChangeStreamUnavailable,
            "daily event deliveries",
        ),
        ("UNAVAILABLE", "", ChangeStreamTransient, "cannot be reached"),
        ("INTERNAL", "", ChangeStreamTransient, "internal error"),
    ],
)
def test_grpc_errors_become_words(status, error_code, kind, words):
    error = stream_error(status, error_code, "details", topic="/data/LeadChangeEvent", url="h:7443")
    assert isinstance(error, kind)
    assert words in str(error)
    assert error.status == status and error.error_code == error_code


def test_the_org_id_comes_from_the_identity_url():
    url = "https://login.salesforce.com/id/00Dxx0000001gEREAY/005xx000001SwiUAAS"
    assert org_id_from_identity_url(url) == "00Dxx0000001gEREAY"
    assert org_id_from_identity_url("") == ""


# --- one topic refused at Subscribe ----------------------------------------------------------------------
class _FakeSubscription:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _OneTopicRefusedClient:
    """Stands in for the Pub/Sub client (its wire is tested against the emulator): GetTopic
    answers for every topic, but the Lead and Contact streams end at once, refused."""

    def __init__(self) -> None:
        self.sinks: dict[str, Any] = {}
        self.subscriptions: dict[str, _FakeSubscription] = {}

    def ensure_login(self) -> None:
        pass

    def close(self) -> None:
        pass

    def topic(self, name: str) -> None:
        pass

    def subscribe(self, topic: str, replay_id: bytes | None, sink: Any) -> _FakeSubscription:
        self.sinks[topic] = sink
        self.subscriptions[topic] = _FakeSubscription()
        if topic in ("/data/LeadChangeEvent", "/data/ContactChangeEvent"):
            sink(StreamEnded(topic, ChangeStreamUnavailable(f"You may not read {topic}.")))
        else:
            sink(Keepalive(topic, b"\x01"))
        return self.subscriptions[topic]


@pytest.mark.django_db(transaction=True)
def test_a_topic_refused_at_subscribe_leaves_the_others_waking_the_sync():
    stop = threading.Event()
    dispatched = threading.Event()
    listener = Listener(
        stop=stop,
        say=lambda message: None,
        dispatch=dispatched.set,
        topics=["/data/OpportunityChangeEvent", "/data/LeadChangeEvent", "/data/ContactChangeEvent"],
    )
    client = _OneTopicRefusedClient()
    listener.client = client
    thread = threading.Thread(target=listener.run)
    thread.start()
    try:

        def named(topic: str) -> bool:
            return topic in (ChangeListener.objects.first() or ChangeListener()).down_reason

        wait_until(
            lambda: named("/data/LeadChangeEvent") and named("/data/ContactChangeEvent"),
            timeout=30,
            what="every refused topic named",
        )
        assert client.subscriptions["/data/LeadChangeEvent"].cancelled
        assert client.subscriptions["/data/ContactChangeEvent"].cancelled
        assert not client.subscriptions["/data/OpportunityChangeEvent"].cancelled
        row = ChangeListener.objects.get()
        assert "The other topics still wake the sync" in row.down_reason
        seq = ChangeStream.objects.get().wake_seq  # the start's catch-up wake-up
        dispatched.clear()
        client.sinks["/data/OpportunityChangeEvent"](
            ChangeEvent("/data/OpportunityChangeEvent", b"\x02", "Opportunity", "UPDATE", ("006A",))
        )
        wait_until(lambda: ChangeStream.objects.get().wake_seq > seq, timeout=30, what="the wake-up")
        assert dispatched.wait(timeout=30)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
