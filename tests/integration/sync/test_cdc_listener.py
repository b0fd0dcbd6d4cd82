"""The change-event listener (`manage.py salesforce_listen`, issue P15) against the emulator's real
Pub/Sub API: a change wakes the sync without waiting for the poll; an org without CDC syncs as
before and the status says why the stream is off; a listener killed mid-burst and restarted, and
two listeners at once, leave the database equal to the org with no activity twice; the stream
recovers from the emulator's faults."""

from __future__ import annotations

import datetime as dt
import itertools
import signal
import sys
import threading
from contextlib import ExitStack, contextmanager

import pytest
from django.test import Client

from opportunities.models import ChangeListener, ChangeStream, CycleTrigger, SyncCycle, SyncStatus
from opportunities.sync.wake import STREAM
from salesforce_emulator.change_events import decode_replay_id
from tests.integration.sync.checks import activity_keys, assert_database_equals_org
from tests.integration.sync.conftest import salesforce_environment
from tests.integration.sync.test_sync_celery import start_worker
from tests.processes import process_env, running, stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CDC_OBJECTS = ("Opportunity", "Contact", "Lead", "OpportunityContactRole")


def listener_env(org, tmp_path, **extra: str) -> dict[str, str]:
    """No beat runs in these tests and the poll interval is an hour: only a wake-up explains a cycle."""
    return process_env(
        OPPSYNC_VAR_DIR=str(tmp_path / "var"),
        REDIS_URL="",
        SALESFORCE_PUBSUB_URL=org.process.pubsub_url,
        SALESFORCE_SYNC_INTERVAL="3600",
        SALESFORCE_RETRY_BACKOFF="0.05",
        SALESFORCE_SYNC_LOCK_SECONDS="5",
        SALESFORCE_CDC_RETRY_SECONDS="2",
        SALESFORCE_CDC_BACKOFF_MAX_SECONDS="2",
        **salesforce_environment(org),
        **extra,
    )


@contextmanager
def listening(env: dict[str, str], log, *, in_process: bool = True):
    command = [sys.executable, "manage.py", "salesforce_listen", *(["--in-process"] if in_process else [])]
    with running(command, env=env, log=log) as process:
        yield process


@pytest.fixture
def api(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def stream_status(api: Client) -> dict:
    response = api.get("/api/v1/sync/status/")
    assert response.status_code == 200
    return response.json()["change_stream"]


def wait_healthy(api: Client, log) -> None:
    wait_until(lambda: stream_status(api)["state"] == "healthy", timeout=90, what="a healthy stream", log=log)


def subscribed_since(status: dict) -> dt.datetime | None:
    value = status["subscribed_since"]
    return dt.datetime.fromisoformat(value) if value else None


def wait_resubscribed(api: Client, log, before: dt.datetime | None) -> None:
    """A healthy stream subscribed *after* `before` (the subscription seen before a fault): the
    state from before the fault cannot satisfy it."""

    def fresh() -> bool:
        status = stream_status(api)
        since = subscribed_since(status)
        return status["state"] == "healthy" and since is not None and (before is None or since > before)

    wait_until(fresh, timeout=90, what="a new healthy subscription", log=log)


def stored_replay_positions() -> dict[str, int]:
    """The replay ids the listeners stored (ChangeStream.replay_ids), as the emulator's positions."""
    stream = ChangeStream.objects.filter(name=STREAM).first()
    stored = (stream.replay_ids or {}) if stream else {}
    positions = {topic: decode_replay_id(bytes.fromhex(hex_id)) for topic, hex_id in stored.items()}
    return {topic: position for topic, position in positions.items() if position is not None}


def assert_no_activity_twice() -> None:
    keys = activity_keys()
    assert len(keys) == len(set(keys)), "an activity was recorded twice"


def wait_synced(org, log, timeout: float = 120) -> None:
    def equal() -> bool:
        try:
            assert_database_equals_org(org)
        except AssertionError:
            return False
        return True

    wait_until(equal, timeout=timeout, what="the database to equal the org", log=log)


def opportunity_visible(api: Client, sf_id: str, **expected) -> bool:
    results = api.get("/api/v1/opportunities/", {"sf_id": sf_id}).json()["results"]
    return bool(results) and all(results[0][key] == value for key, value in expected.items())


def new_opportunity(org, name: str) -> str:
    return org.create("Opportunity", {"Name": name, "StageName": "Prospecting", "CloseDate": "2027-03-01"})[0]


def assert_one_cycle_at_a_time() -> None:
    """No cycle started before the one before it ended (a cycle killed with its process never
    ended: the next one started after its lease expired and marked it abandoned)."""
    cycles = list(SyncCycle.objects.order_by("started_at"))
    for before, after in itertools.pairwise(cycles):
        if before.ended_at is None:
            assert before.status == SyncStatus.FAILED and "Abandoned" in before.error_message, before
            continue
        assert before.ended_at <= after.started_at, (before, after)


def test_a_change_becomes_visible_through_the_api_after_a_wakeup_without_the_poll(org, tmp_path, api):
    log = tmp_path / "listener.log"
    with listening(listener_env(org, tmp_path), log):
        wait_healthy(api, log)
        # The catch-up cycle of the start.
        wait_until(
            lambda: SyncCycle.objects.filter(status=SyncStatus.SUCCEEDED).exists(),
            timeout=60,
            what="the catch-up cycle",
            log=log,
        )
        sf_id = new_opportunity(org, "Woken deal")
        wait_until(
            lambda: opportunity_visible(api, sf_id), timeout=60, what="the new deal in the API", log=log
        )
        org.update("Opportunity", {"Id": sf_id, "StageName": "Qualification"})
        wait_until(
            lambda: opportunity_visible(api, sf_id, stage="Qualification"),
            timeout=60,
            what="the stage change in the API",
            log=log,
        )
        # The listener writes its counts every few seconds: the create's and the update's events.
        wait_until(
            lambda: stream_status(api)["event_deliveries_today"] >= 2,
            timeout=30,
            what="both events counted",
            log=log,
        )
        status = stream_status(api)
    assert status["wakeups_today"] >= 2
    assert status["subscribed_since"] and status["last_event_at"]
    assert "healthy" in status["poll_cadence"]["reason"]
    # No beat ran and the poll interval is an hour: every cycle was a wake-up.
    assert set(SyncCycle.objects.values_list("trigger", flat=True)) == {CycleTrigger.WAKE}
    assert_database_equals_org(org)
    assert_no_activity_twice()
    assert_one_cycle_at_a_time()


def test_an_org_without_cdc_syncs_as_before_and_the_status_names_why(org, tmp_path, api, synced_settings):
    for sobject in CDC_OBJECTS:
        org.cdc_select(sobject, False)
    log = tmp_path / "listener.log"
    with listening(listener_env(org, tmp_path), log):
        wait_until(lambda: stream_status(api)["state"] == "down", timeout=60, what="the stream down", log=log)
        status = stream_status(api)
        assert "Change Data Capture is not enabled" in status["reason"]
        assert status["poll_cadence"]["base_seconds"] == synced_settings.SALESFORCE_SYNC_INTERVAL
        assert "Change Data Capture is not enabled" in status["poll_cadence"]["reason"]
        page = api.get("/admin/sync-status/").content.decode()
        assert "Change Data Capture is not enabled" in page
        # The poll syncs as it always did (here: this process's cycles, as beat would run them).
        from opportunities.sync.service import sync_cycle_run

        wait_until(lambda: ChangeStream.objects.exists(), timeout=30, what="the catch-up wake-up", log=log)
        sf_id = new_opportunity(org, "Polled deal")

        def polled() -> bool:
            cycle = sync_cycle_run(trigger=CycleTrigger.POLL)
            return cycle is not None and cycle.status == SyncStatus.SUCCEEDED

        wait_until(polled, timeout=60, what="a poll cycle", log=log)
        assert opportunity_visible(api, sf_id)
    assert_database_equals_org(org)
    assert_no_activity_twice()
    assert_one_cycle_at_a_time()


def test_a_listener_killed_mid_burst_and_restarted_loses_and_duplicates_nothing(org, tmp_path, api):
    """The restarted listener resumes CUSTOM from the replay id the first one stored (not at
    LATEST): the emulator saw that position, and the events after it are delivered again."""
    org.generate(opportunities=20, people=30)
    env = listener_env(org, tmp_path)
    log = tmp_path / "listener.log"
    ids = [r["Id"] for r in org.records("Opportunity")]
    stages = ("Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review")
    topic = "/data/OpportunityChangeEvent"
    with listening(env, log) as first:
        wait_healthy(api, log)
        wait_synced(org, log)
        for index, sf_id in enumerate(ids[:5]):
            org.update("Opportunity", {"Id": sf_id, "StageName": stages[index % 4]})
        # A cycle that started after those events succeeded, so their replay id was stored.
        wait_until(lambda: topic in stored_replay_positions(), timeout=60, what="a stored replay id", log=log)

        def burst() -> None:
            for index, sf_id in enumerate(ids[5:12]):
                org.update(
                    "Opportunity", {"Id": sf_id, "StageName": stages[index % 4], "Amount": 500 + index}
                )

        writer = threading.Thread(target=burst)
        writer.start()
        latest = org.latest_replay()
        wait_until(lambda: org.latest_replay() >= latest + 2, timeout=60, what="the burst under way", log=log)
        stop(first, sig=signal.SIGKILL)  # in the middle of the burst, perhaps of a cycle
        writer.join(timeout=60)
    for index, sf_id in enumerate(ids[12:]):
        org.update("Opportunity", {"Id": sf_id, "StageName": stages[index % 4], "Amount": 1000 + index})
    stored = stored_replay_positions()[topic]
    latest = org.latest_replay()
    assert stored < latest  # the events written while no listener ran come after it
    presets_before = org.pubsub_subscriptions()["by_preset"]
    restarted_at = dt.datetime.now(dt.UTC)
    log_2 = tmp_path / "listener-2.log"
    with listening(env, log_2):
        wait_synced(org, log_2)
        subscriptions = org.pubsub_subscriptions()
        # Every topic the first listener stored resumed CUSTOM from exactly that position.
        assert subscriptions["custom_starts"][topic] == stored
        assert subscriptions["by_preset"]["CUSTOM"] > presets_before["CUSTOM"]
        # ... and got the events after it again (all of the log's events after `stored` are the
        # Opportunity updates; a listener started at LATEST would have received none of them).
        wait_until(
            lambda: (
                sum(
                    ChangeListener.objects.filter(started_at__gte=restarted_at).values_list(
                        "events_today", flat=True
                    )
                )
                >= latest - stored
            ),
            timeout=60,
            what="the replayed events at the restarted listener",
            log=log_2,
        )
    assert_no_activity_twice()
    assert_one_cycle_at_a_time()


@contextmanager
def two_listeners(org, env: dict[str, str], api: Client, logs: list, *, queues: str):
    """A Celery worker on `queues` and two listeners, one running its cycles itself and one
    queueing them for the worker; yields once both are up, the stream healthy and the org synced."""
    with ExitStack() as stack:
        worker = start_worker(env, logs[2], queues=queues)
        stack.callback(stop, worker)
        stack.enter_context(listening(env, logs[0]))
        stack.enter_context(listening(env, logs[1], in_process=False))
        wait_until(
            lambda: stream_status(api)["listeners"] == 2, timeout=90, what="two listeners", log=logs[1]
        )
        wait_healthy(api, logs[0])
        wait_synced(org, logs[2])
        yield


def test_two_listeners_at_once_run_one_cycle_at_a_time(org, tmp_path, api):
    """One runs its cycles itself, the other queues them for a Celery worker (file broker)."""
    org.generate(opportunities=20, people=30)
    env = listener_env(org, tmp_path)
    logs = [tmp_path / "listener-a.log", tmp_path / "listener-b.log", tmp_path / "worker.log"]
    with two_listeners(org, env, api, logs, queues="sync"):
        ids = [r["Id"] for r in org.records("Opportunity")]

        def burst() -> None:
            for index, sf_id in enumerate(ids):
                org.update("Opportunity", {"Id": sf_id, "Amount": 5000 + index, "StageName": "Qualification"})

        writer = threading.Thread(target=burst)
        writer.start()
        writer.join(timeout=120)
        wait_synced(org, logs[2])
    assert_no_activity_twice()
    assert_one_cycle_at_a_time()
    assert SyncCycle.objects.filter(trigger=CycleTrigger.WAKE).exists()


@pytest.mark.parametrize("fault", ["reset_end", "reset_unavailable", "expire_tokens", "stall"])
def test_the_stream_recovers_from_faults_and_changes_still_wake_the_sync(org, tmp_path, api, fault):
    # A short keepalive period, so a stalled stream is noticed and rebuilt within seconds.
    org.pubsub_keepalive(0.5)
    env = listener_env(
        org, tmp_path, SALESFORCE_CDC_KEEPALIVE_SECONDS="1", SALESFORCE_CDC_KEEPALIVE_MARGIN_SECONDS="1"
    )
    log = tmp_path / "listener.log"
    with listening(env, log):
        wait_healthy(api, log)
        before = subscribed_since(stream_status(api))
        started = org.pubsub_subscriptions()["started"]
        if fault == "reset_end":
            org.pubsub_reset("end")
        elif fault == "reset_unavailable":
            org.pubsub_reset("unavailable")
        elif fault == "expire_tokens":
            org.pubsub_expire_tokens()
        else:
            org.pubsub_stall(True)
            wait_until(
                lambda: stream_status(api)["state"] != "healthy", timeout=60, what="the stall seen", log=log
            )
            org.pubsub_stall(False)
        # A new subscription, not the one from before the fault (which looked healthy too).
        wait_resubscribed(api, log, before)
        assert org.pubsub_subscriptions()["started"] > started
        sf_id = new_opportunity(org, f"After {fault}")
        wait_until(
            lambda: opportunity_visible(api, sf_id), timeout=60, what="the deal after the fault", log=log
        )
    wait_synced(org, log)
    assert_no_activity_twice()
    assert_one_cycle_at_a_time()


def test_used_up_deliveries_are_named_and_the_stream_comes_back(org, tmp_path, api):
    org.pubsub_exhaust_deliveries()
    log = tmp_path / "listener.log"
    with listening(listener_env(org, tmp_path), log):
        wait_until(lambda: stream_status(api)["state"] == "down", timeout=60, what="the stream down", log=log)
        assert "daily event deliveries are used up" in stream_status(api)["reason"]
        org.pubsub_deliveries(used=0)
        wait_resubscribed(api, log, None)  # seen down above: this subscription is new
        sf_id = new_opportunity(org, "After the allocation freed up")
        wait_until(lambda: opportunity_visible(api, sf_id), timeout=60, what="the deal", log=log)
    wait_synced(org, log)
    assert_no_activity_twice()
    assert_one_cycle_at_a_time()
