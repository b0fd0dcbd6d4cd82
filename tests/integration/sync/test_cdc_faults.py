"""The emulator's Pub/Sub fault hooks against the change-event listener (issue P15 acceptance):
dropped events, GAP_* and GAP_OVERFLOW events, delayed events and an object not selected for
CDC, and webhooks sent once with two listeners at once and with a listener killed mid-burst.
The other hooks (reset, expired tokens, stall, deliveries used up, no CDC at all) and the plain
SIGKILL and two-listener runs are in test_cdc_listener.py, whose helpers these tests share.

Each test ends with the database equal to the org, no activity recorded twice and one cycle at
a time. Which cycle brought a change is read from its per-object counts (`SyncObjectRun`), so a
test asserts the path (a WAKE cycle, or beat's POLL) rather than a time."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from contextlib import ExitStack

import pytest
from django.db.models import Q
from django.test import Client
from django.utils import timezone

from campaigns.models import Delivery, DeliveryStatus, TriggerCursor
from campaigns.receiver import Receiver
from campaigns.services import campaign_save
from opportunities.models import Activity, ChangeListener, CycleTrigger, SyncCycle, SyncObjectRun, SyncStatus
from opportunities.sync.lock import SyncLock
from opportunities.sync.wake import lease_held, newest_cycle_id, wake_pending
from tests.integration.sync.checks import assert_database_equals_org
from tests.integration.sync.test_cdc_listener import (
    assert_no_activity_twice,
    assert_one_cycle_at_a_time,
    listener_env,
    listening,
    new_opportunity,
    opportunity_visible,
    stored_replay_positions,
    stream_status,
    two_listeners,
    wait_healthy,
    wait_synced,
)
from tests.integration.sync.test_sync_celery import start_worker
from tests.processes import stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SECRET = "whsec_cdc_faults_secret_0123"


@pytest.fixture
def api(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def wait_quiet(log) -> None:
    """No cycle running or holding the lease and no wake-up pending: from here on, only a new
    event (or beat) can start a cycle."""

    def quiet() -> bool:
        return (
            not lease_held()
            and not wake_pending()
            and not SyncCycle.objects.filter(status=SyncStatus.RUNNING).exists()
        )

    wait_until(quiet, timeout=60, what="no cycle running and no wake-up pending", log=log)


def cycles_that_brought(
    sobject: str, after_cycle_id: int, *, ended_after: dt.datetime | None = None
) -> list[SyncCycle]:
    """The succeeded cycles after `after_cycle_id` (and ended after `ended_after`) that created,
    updated or deleted a row of `sobject`, oldest first."""
    runs = SyncObjectRun.objects.filter(cycle_id__gt=after_cycle_id, sobject=sobject).filter(
        Q(created_count__gt=0) | Q(updated_count__gt=0) | Q(deleted_count__gt=0)
    )
    cycles = SyncCycle.objects.filter(id__in=runs.values("cycle_id"), status=SyncStatus.SUCCEEDED)
    if ended_after is not None:
        cycles = cycles.filter(ended_at__gte=ended_after)
    return list(cycles.order_by("id"))


def assert_final_state(org) -> None:
    assert_database_equals_org(org)
    assert_no_activity_twice()
    assert_one_cycle_at_a_time()


# --- the replay rule ---------------------------------------------------------------------------------
def test_a_replay_id_is_stored_only_after_a_cycle_that_started_after_its_event_and_a_restart_resumes_there(
    org, tmp_path, api
):
    """While this test holds the sync lease no cycle can start: the listener hears the event,
    ticks, and still stores nothing. Killed then, the next listener resumes CUSTOM from the id
    stored before the event and is handed the event again, whose cycle brings the change."""
    topic = "/data/OpportunityChangeEvent"
    env = listener_env(org, tmp_path)
    log = tmp_path / "listener.log"
    lock = SyncLock(lease_seconds=600, heartbeat=False)
    with listening(env, log) as first:
        wait_healthy(api, log)
        sf_id = new_opportunity(org, "Stored after its cycle")
        wait_until(lambda: opportunity_visible(api, sf_id), timeout=60, what="the deal", log=log)
        latest = org.latest_replay()
        wait_until(
            lambda: stored_replay_positions().get(topic) == latest,
            timeout=60,
            what="the deal's replay id stored",
            log=log,
        )
        wait_quiet(log)
        assert lock.acquire()
        org.update("Opportunity", {"Id": sf_id, "StageName": "Closed Won"})
        event = org.latest_replay()
        assert event == latest + 1
        row = ChangeListener.objects.get(stopped_at=None)
        heard = wait_until(
            lambda: ChangeListener.objects.filter(pk=row.pk, events_today__gt=row.events_today).first(),
            timeout=60,
            what="the listener to hear the event",
            log=log,
        )
        # One more of the listener's ticks after it wrote that (each stores what it may, then writes).
        wait_until(
            lambda: ChangeListener.objects.filter(pk=row.pk, seen_at__gt=heard.seen_at).exists(),
            timeout=30,
            what="another tick",
            log=log,
        )
        assert stored_replay_positions()[topic] == latest, "stored before a cycle that started after it"
        assert not SyncCycle.objects.filter(started_at__gt=heard.last_event_at).exists()
        stop(first, sig=signal.SIGKILL)
    lock.release()
    log_2 = tmp_path / "listener-2.log"
    restarted_at = timezone.now()
    with listening(env, log_2):
        wait_until(
            lambda: opportunity_visible(api, sf_id, stage="Closed Won"),
            timeout=60,
            what="the change",
            log=log_2,
        )
        assert org.pubsub_subscriptions()["custom_starts"][topic] == latest
        wait_until(
            lambda: stored_replay_positions().get(topic) == event,
            timeout=60,
            what="the event's replay id stored after its cycle",
            log=log_2,
        )
        wait_until(
            lambda: ChangeListener.objects.filter(started_at__gt=restarted_at, events_today__gte=1).exists(),
            timeout=30,
            what="the event handed over again to the restarted listener",
            log=log_2,
        )
    assert_final_state(org)


# --- drop the next N events: the safety poll brings the change ----------------------------------------
def test_a_dropped_event_is_brought_by_the_safety_poll(org, tmp_path, api, settings):
    """The event never reaches the listener, so no wake-up: beat's next tick while the stream is
    healthy, the safety poll, brings the change. The poll cadence is SALESFORCE_SYNC_INTERVAL
    while the stream is down and the safety poll (never more often than the sync interval)
    while it is healthy, so beat ticks every second and the safety poll is five."""
    env = listener_env(org, tmp_path)
    env.update(SALESFORCE_SYNC_INTERVAL="1", SALESFORCE_SAFETY_POLL_INTERVAL="5")
    # The status API answers from this process's settings: the same cadence as beat's.
    settings.SALESFORCE_SYNC_INTERVAL, settings.SALESFORCE_SAFETY_POLL_INTERVAL = 1.0, 5.0
    logs = [tmp_path / "listener.log", tmp_path / "worker.log"]
    with ExitStack() as stack:
        worker = start_worker(env, logs[1], queues="sync")
        stack.callback(stop, worker)
        stack.enter_context(listening(env, logs[0]))
        wait_healthy(api, logs[0])
        wait_synced(org, logs[1])
        wait_until(
            lambda: stream_status(api)["poll_cadence"]["base_seconds"] == 5,
            timeout=30,
            what="the safety poll's cadence",
            log=logs[0],
        )
        wait_quiet(logs[0])
        latest = org.latest_replay()
        before = newest_cycle_id()
        org.pubsub_drop_events(1)
        created_at = timezone.now()
        sf_id = new_opportunity(org, "Dropped event")
        assert org.latest_replay() == latest, "the event was published after all"
        wait_until(
            lambda: opportunity_visible(api, sf_id),
            timeout=60,
            what="the deal by the safety poll",
            log=logs[1],
        )
        status = stream_status(api)
    assert status["state"] == "healthy" and status["poll_cadence"]["base_seconds"] == 5
    # The cycle running when `before` was read may have read its window after the create: the
    # cycles that ended after the create are the ones that can have brought it.
    [first, *_] = cycles_that_brought("Opportunity", 0, ended_after=created_at)
    assert first.trigger == CycleTrigger.POLL
    # Nothing woke the sync after the dropped event: every cycle since was beat's.
    assert set(SyncCycle.objects.filter(id__gt=before).values_list("trigger", flat=True)) == {
        CycleTrigger.POLL
    }
    assert_final_state(org)


# --- GAP_* and GAP_OVERFLOW: a header-only event still wakes a cycle -----------------------------------
@pytest.mark.parametrize(
    "change_type", ["GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"]
)
def test_a_gap_event_wakes_a_cycle_that_brings_the_change(org, tmp_path, api, change_type):
    """The change's own event is dropped; the gap event (no record data, for GAP_OVERFLOW not even
    ids) is all the listener hears, and the cycle it wakes reads the change from the window. No
    beat runs and the poll interval is an hour: only a wake-up explains a cycle."""
    org.generate(opportunities=5, people=5)
    log = tmp_path / "listener.log"
    with listening(listener_env(org, tmp_path), log):
        wait_healthy(api, log)
        ids = [r["Id"] for r in org.records("Opportunity")]
        # A deal with no roles: deleting or undeleting it is one event (roles would cascade).
        bare = new_opportunity(org, "No roles")
        if change_type == "GAP_UNDELETE":
            org.delete("Opportunity", bare)
        wait_synced(org, log)
        wait_quiet(log)
        latest = org.latest_replay()
        before = newest_cycle_id()
        if change_type == "GAP_OVERFLOW":
            # Salesforce sends GAP_OVERFLOW for a transaction too big for events: many changes.
            org.pubsub_drop_events(len(ids))
            for index, sf_id in enumerate(ids):
                org.update("Opportunity", {"Id": sf_id, "Amount": 7000 + index})
            changed = ids
        else:
            org.pubsub_drop_events(1)
            if change_type == "GAP_CREATE":
                changed = [new_opportunity(org, "Created in a gap")]
            elif change_type == "GAP_UPDATE":
                org.update("Opportunity", {"Id": ids[1], "StageName": "Negotiation/Review"})
                changed = [ids[1]]
            elif change_type == "GAP_DELETE":
                org.delete("Opportunity", bare)
                changed = [bare]
            else:
                org.undelete("Opportunity", bare)
                changed = [bare]
        assert org.latest_replay() == latest, "the change's events were published after all"
        # Nothing heard, nothing woken.
        assert newest_cycle_id() == before
        org.pubsub_gap("Opportunity", change_type, [] if change_type == "GAP_OVERFLOW" else changed)
        assert org.latest_replay() == latest + 1
        wait_synced(org, log, timeout=60)
    brought = cycles_that_brought("Opportunity", before)
    assert brought and brought[0].trigger == CycleTrigger.WAKE
    assert set(SyncCycle.objects.filter(id__gt=before).values_list("trigger", flat=True)) == {
        CycleTrigger.WAKE
    }
    assert_final_state(org)


# --- delay events by N ms ---------------------------------------------------------------------------
def test_delayed_events_still_wake_the_sync_and_the_database_equals_the_org(org, tmp_path, api):
    org.generate(opportunities=8, people=10)
    log = tmp_path / "listener.log"
    with listening(listener_env(org, tmp_path), log):
        wait_healthy(api, log)
        wait_synced(org, log)
        wait_quiet(log)
        before = newest_cycle_id()
        org.pubsub_delay(400)
        ids = [r["Id"] for r in org.records("Opportunity")]
        for index, sf_id in enumerate(ids[:4]):
            org.update(
                "Opportunity", {"Id": sf_id, "StageName": "Proposal/Price Quote", "Amount": 900 + index}
            )
        created = new_opportunity(org, "Delayed")
        org.delete("Opportunity", ids[5])
        wait_until(lambda: opportunity_visible(api, created), timeout=60, what="the delayed deal", log=log)
        wait_synced(org, log, timeout=60)
        status = stream_status(api)
    assert status["state"] == "healthy"
    brought = cycles_that_brought("Opportunity", before)
    assert brought and {c.trigger for c in brought} == {CycleTrigger.WAKE}
    assert_final_state(org)


# --- object not selected: the other objects still wake, the status names the one --------------------
def test_an_object_not_selected_is_named_and_the_other_objects_still_wake_the_sync(
    org, tmp_path, api, settings
):
    org.cdc_select("Lead", False)
    log = tmp_path / "listener.log"
    with listening(listener_env(org, tmp_path), log):
        wait_until(
            lambda: "Lead" in stream_status(api)["reason"],
            timeout=60,
            what="the missing topic named",
            log=log,
        )
        status = stream_status(api)
        assert status["state"] != "healthy"
        assert "Change Data Capture is not enabled" in status["reason"]
        assert "still wake" in status["reason"]
        # Not healthy: the poll runs at SALESFORCE_SYNC_INTERVAL, not the safety poll.
        assert status["poll_cadence"]["base_seconds"] == settings.SALESFORCE_SYNC_INTERVAL
        wait_until(lambda: SyncCycle.objects.exists(), timeout=60, what="the catch-up cycle", log=log)
        wait_quiet(log)
        # The slow timer (2 s here) rebuilds the stream to try Lead again; the new streams resume
        # where the old ones stopped, so a planned rebuild asks for no cycle.
        cycles, started = SyncCycle.objects.count(), org.pubsub_subscriptions()["started"]
        wait_until(
            lambda: org.pubsub_subscriptions()["started"] >= started + 6,
            timeout=60,
            what="two more rebuilds",
            log=log,
        )
        assert SyncCycle.objects.count() == cycles
        before = newest_cycle_id()
        sf_id = new_opportunity(org, "Woken without Lead")
        wait_until(lambda: opportunity_visible(api, sf_id), timeout=60, what="the deal", log=log)
    brought = cycles_that_brought("Opportunity", before)
    assert brought and brought[0].trigger == CycleTrigger.WAKE
    assert_final_state(org)


# --- webhooks sent once ---------------------------------------------------------------------------
def campaign_for_new_buyers(receiver: Receiver) -> None:
    """ "Added to Opportunity", any role: one webhook per new contact role."""
    campaign_save(
        campaign=None,
        data={
            "name": "New buyers",
            "triggers": [{"trigger": "added_to_opportunity", "constraints": []}],
            "webhook": {"url": receiver.url, "secret": SECRET},
        },
    )


def webhook_env(org, tmp_path) -> dict[str, str]:
    env = listener_env(org, tmp_path)
    env.update(
        TRIGGERS_DISPATCH="true",
        WEBHOOK_SWEEP_INTERVAL="1",
        WEBHOOK_CONNECT_TIMEOUT="1",
        WEBHOOK_READ_TIMEOUT="5",
        WEBHOOK_RETRY_BASE_SECONDS="0.2",
    )
    return env


def role_burst(org, deals: list[str], contacts: list[str]) -> None:
    """One new role per contact, each its own transaction (so its own event)."""
    for index, contact in enumerate(contacts):
        org.create(
            "OpportunityContactRole",
            {"OpportunityId": deals[index % len(deals)], "ContactId": contact, "Role": "Decision Maker"},
        )


def wait_webhooks_settled(log) -> None:
    """Every activity has been looked at by trigger evaluation and no delivery is pending: from
    here no webhook can go out."""

    def settled() -> bool:
        newest = Activity.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        cursor = TriggerCursor.objects.order_by("pk").first()
        return (
            cursor is not None
            and cursor.last_activity_id >= newest
            and not Delivery.objects.filter(status=DeliveryStatus.PENDING).exists()
        )

    wait_until(settled, timeout=90, what="trigger evaluation and deliveries to finish", log=log)


def assert_each_webhook_once(receiver: Receiver, contacts: list[str]) -> None:
    """Counted at the receiver: one request per expected webhook, no repeat, no other."""
    assert Delivery.objects.filter(is_test=False).count() == len(contacts)
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
    received = list(receiver.received)
    assert receiver.requests == len(received) == len(contacts), (receiver.requests, len(received))
    assert not any(r.repeat for r in received)
    assert all(r.verified for r in received)
    assert len(set(receiver.keys())) == len(contacts)
    people = sorted(r.body["person"]["sf_contact_id"] for r in received)
    assert people == sorted(contacts), "a webhook was missing or sent for the wrong person"


def buyers_and_deals(org, tmp_path, *, count: int, tag: str) -> tuple[list[str], list[str], Receiver, dict]:
    """A small org, `count` new contacts to add to its deals, a webhook receiver and the env."""
    org.generate(opportunities=6, people=6)
    contacts = org.create(
        "Contact", *({"LastName": f"Buyer {n}", "Email": f"{tag}{n}@example.com"} for n in range(count))
    )
    deals = [r["Id"] for r in org.records("Opportunity")]
    return contacts, deals, Receiver(secret=SECRET).start(), webhook_env(org, tmp_path)


def test_two_listeners_and_a_burst_send_each_webhook_once(org, tmp_path, api):
    contacts, deals, receiver, env = buyers_and_deals(org, tmp_path, count=12, tag="b")
    logs = [tmp_path / "listener-a.log", tmp_path / "listener-b.log", tmp_path / "worker.log"]
    try:
        with two_listeners(org, env, api, logs, queues="sync,triggers,webhooks"):
            campaign_for_new_buyers(receiver)  # after the initial load (whose activities trigger nothing)
            writer = threading.Thread(target=role_burst, args=(org, deals, contacts))
            writer.start()
            writer.join(timeout=120)
            wait_synced(org, logs[2])
            wait_webhooks_settled(logs[2])
    finally:
        receiver.stop()
    assert_each_webhook_once(receiver, contacts)
    assert SyncCycle.objects.filter(trigger=CycleTrigger.WAKE).exists()
    assert_final_state(org)


def test_a_listener_killed_mid_burst_sends_each_webhook_once(org, tmp_path, api):
    contacts, deals, receiver, env = buyers_and_deals(org, tmp_path, count=14, tag="k")
    logs = [tmp_path / "listener.log", tmp_path / "listener-2.log", tmp_path / "worker.log"]
    try:
        with ExitStack() as stack:
            # Decides and delivers; the cycles run in the listener (and die with it).
            worker = start_worker(env, logs[2], queues="triggers,webhooks")
            stack.callback(stop, worker)
            with listening(env, logs[0]) as first:
                wait_healthy(api, logs[0])
                wait_synced(org, logs[0])
                campaign_for_new_buyers(receiver)
                role_burst(org, deals, contacts[:4])
                wait_until(lambda: receiver.requests >= 1, timeout=60, what="a first webhook", log=logs[2])
                writer = threading.Thread(target=role_burst, args=(org, deals, contacts[4:10]))
                writer.start()
                latest = org.latest_replay()
                wait_until(
                    lambda: org.latest_replay() >= latest + 2,
                    timeout=60,
                    what="the burst under way",
                    log=logs[0],
                )
                stop(first, sig=signal.SIGKILL)  # mid-burst, perhaps mid-cycle
                writer.join(timeout=60)
            role_burst(org, deals, contacts[10:])  # while no listener runs
            with listening(env, logs[1]):
                wait_synced(org, logs[1], timeout=90)
                wait_webhooks_settled(logs[2])
    finally:
        receiver.stop()
    assert_each_webhook_once(receiver, contacts)
    assert_final_state(org)
