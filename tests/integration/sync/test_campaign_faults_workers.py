"""P11 cases 1 and 5 end to end: changes in the emulated org go through real Celery workers on
Redis (sync, `triggers`, `webhooks` queues) to a real receiver.

- One of three campaigns fails at run time: it is paused with its reason (model, API, admin),
  and the other two deliver every activity exactly once, before and after the pause.
- A receiver trickles its answer a byte at a time (no read ever times out): the attempt is cut
  at its total deadline while its claim still holds, so a second worker never sends it at the
  same time, and the one success is the one recorded."""

from __future__ import annotations

import subprocess

import pytest
from django.test import Client

from campaigns.models import Campaign, Delivery, DeliveryAttempt, DeliveryStatus, TriggerCursor
from campaigns.receiver import Receiver
from campaigns.services import campaign_save
from opportunities.models import Activity, ActivityType, Opportunity, SyncCycle, SyncStatus
from tests.integration.sync.test_sync_celery import start_worker, worker_env
from tests.processes import stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
SECRET = "whsec_fault_worker_secret_0123"
ALL_QUEUES = "sync,default,triggers,webhooks"
# Saved through the ORM, as a row saved before validation refused such values would be:
# evaluating it overflows the date arithmetic (9999-12-31 has no next day).
PAUSED_PREFIX = "Paused by the evaluator: its triggers"
OVERFLOWING = [
    {
        "trigger": "added_to_opportunity",
        "constraints": [{"field": "CloseDate", "operator": "is", "value": ["9999-12-31"]}],
    }
]


def _initial_load(worker_log) -> None:
    wait_until(
        lambda: (
            Opportunity.objects.count() == 12
            and SyncCycle.objects.filter(status=SyncStatus.SUCCEEDED).exists()
        ),
        timeout=90,
        what="the initial load",
        log=worker_log,
    )


def _campaign(name: str, receiver: Receiver) -> Campaign:
    saved, _ = campaign_save(
        campaign=None,
        data={
            "name": name,
            "triggers": [{"trigger": "added_to_opportunity"}],
            "webhook": {"url": receiver.url, "secret": SECRET},
        },
    )
    return saved


def _add_people_to_a_deal(org, name: str, count: int) -> None:
    [deal] = org.create("Opportunity", {"Name": name, "StageName": "Prospecting", "CloseDate": "2031-01-01"})
    contacts = org.create(
        "Contact",
        *({"LastName": f"{name}{n}", "Email": f"{name.lower()}{n}@example.com"} for n in range(count)),
    )
    org.create(
        "OpportunityContactRole",
        *({"OpportunityId": deal, "ContactId": contact, "Role": "Influencer"} for contact in contacts),
    )


def _added_since(campaign: Campaign) -> set[int]:
    return set(
        Activity.objects.filter(
            activity_type=ActivityType.ADDED_TO_OPPORTUNITY,
            is_initial_load=False,
            recorded_at__gte=campaign.active_since,
        ).values_list("pk", flat=True)
    )


def _delivered(campaign: Campaign) -> set[int]:
    return set(
        Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.SUCCEEDED).values_list(
            "activity_id", flat=True
        )
    )


def test_one_of_three_campaigns_fails_at_run_time_is_paused_and_the_others_deliver_everything_once(
    org, synced_settings, tmp_path, superuser
):
    org.generate(opportunities=12, people=10, seed=43)
    receiver = Receiver(secret=SECRET).start()
    env = worker_env(
        org,
        tmp_path,
        "redis",
        TRIGGERS_DISPATCH="true",
        WEBHOOK_SWEEP_INTERVAL="1",
        WEBHOOK_RETRY_BASE_SECONDS="0.2",
    )
    log = tmp_path / "worker.log"
    worker = start_worker(env, log, queues=ALL_QUEUES)
    try:
        _initial_load(log)
        first = _campaign("First", receiver)
        broken = _campaign("Broken", receiver)
        third = _campaign("Third", receiver)
        Campaign.objects.filter(pk=broken.pk).update(triggers=OVERFLOWING)

        _add_people_to_a_deal(org, "Wave", 3)
        wait_until(
            lambda: (
                len(_added_since(first)) == 3
                and _delivered(first) == _delivered(third) == _added_since(first)
            ),
            timeout=120,
            what="both healthy campaigns to deliver the three activities (before the fix: none ever)",
            log=log,
        )
        broken.refresh_from_db()
        # The evaluator checks the stored triggers before it runs them (the row was written past
        # the API's check, as a legacy row would be): the reason names the place and the value.
        assert broken.is_paused
        assert broken.paused_reason.startswith(PAUSED_PREFIX)
        assert "triggers[0].constraints[0].value" in broken.paused_reason
        assert "9999-12-31" in broken.paused_reason

        # The flow goes on after the pause: a second wave reaches the two healthy campaigns.
        _add_people_to_a_deal(org, "Later", 2)
        wait_until(
            lambda: (
                len(_added_since(first)) == 5
                and _delivered(first) == _delivered(third) == _added_since(first)
            ),
            timeout=120,
            what="the second wave",
            log=log,
        )
        wait_until(
            lambda: TriggerCursor.objects.get().last_activity_id >= max(_added_since(first)),
            timeout=60,
            what="the cursor past the last activity",
            log=log,
        )
    finally:
        stop(worker)
        receiver.stop()

    assert not Delivery.objects.filter(campaign=broken).exists()
    deliveries = Delivery.objects.filter(campaign__in=[first, third])
    assert deliveries.count() == 10  # 5 activities x 2 campaigns, none twice (the unique constraint)
    # The receiver saw each delivery once, and nothing else.
    assert sorted(receiver.keys()) == sorted(str(d.idempotency_key) for d in deliveries)
    assert receiver.requests == 10 and all(r.verified and not r.repeat for r in receiver.received)
    assert DeliveryAttempt.objects.filter(delivery__in=deliveries).count() == 10

    # Shown paused, with the reason, in the API and on the admin's list and editor.
    client = Client()
    client.force_login(superuser)
    body = client.get(f"/api/v1/campaigns/{broken.pk}/").json()
    assert body["is_active"] is False and body["paused_at"] and body["paused_reason"] == broken.paused_reason
    listing = client.get("/admin/campaigns/campaign/").content.decode()
    assert "Paused" in listing and PAUSED_PREFIX in listing
    editor = client.get(f"/admin/campaigns/campaign/{broken.pk}/change/").content.decode()
    assert 'id="campaign-paused"' in editor and PAUSED_PREFIX in editor


def _second_webhook_worker(env: dict[str, str], log) -> subprocess.Popen[bytes]:
    """Another worker on `webhooks` only, without beat: what takes a delivery over when the
    first worker's claim runs out."""
    return subprocess.Popen(
        ["celery", "-A", "oppsync_site", "worker", "--queues", "webhooks", "--concurrency", "1",
         "--hostname", "second@%h", "--loglevel", "INFO"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def test_a_trickling_receiver_is_cut_at_the_deadline_and_only_one_success_is_recorded(
    org, synced_settings, tmp_path
):
    org.generate(opportunities=12, people=10, seed=47)
    # ~150 bytes a byte every 0.15 s: over 20 s, while no read waits longer than 0.15 s.
    receiver = Receiver(secret=SECRET, trickle_seconds=0.15).start()
    env = worker_env(
        org,
        tmp_path,
        "redis",
        TRIGGERS_DISPATCH="true",
        WEBHOOK_SWEEP_INTERVAL="1",
        WEBHOOK_CONNECT_TIMEOUT="1",
        WEBHOOK_READ_TIMEOUT="2",  # before the fix a claim lasted 1 + 2 + 5 s: the trickle outlasts it
        WEBHOOK_ATTEMPT_SECONDS="4",
        WEBHOOK_RETRY_BASE_SECONDS="0.2",
    )
    log = tmp_path / "worker.log"
    workers = [start_worker(env, log, queues=ALL_QUEUES), _second_webhook_worker(env, log)]
    try:
        _initial_load(log)
        _campaign("Trickled", receiver)
        receiver.trickle_next = 1
        _add_people_to_a_deal(org, "Slow", 1)
        delivery = wait_until(lambda: Delivery.objects.first(), timeout=90, what="the decision", log=log)
        wait_until(
            lambda: (
                receiver.trickles_ended == 1
                and DeliveryAttempt.objects.filter(delivery=delivery).exclude(error="").exists()
                and Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SUCCEEDED).exists()
            ),
            timeout=120,
            what="the trickled attempt to end and the delivery to succeed",
            log=log,
        )
    finally:
        for worker in workers:
            stop(worker)
        receiver.stop()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempt_count == 2
    attempts = list(delivery.attempts.order_by("at", "pk"))
    assert [a.error.split(":")[0] for a in attempts] == ["timed out", ""]
    assert "within 4 s" in attempts[0].error
    # Before the fix: a second worker sent it while the first still waited (two 200s), and the
    # first one's late failure set it back to pending, so it was sent a third time.
    assert delivery.attempts.filter(status_code=200).count() == 1
    assert receiver.requests == 2 and len(receiver.received) == 1
