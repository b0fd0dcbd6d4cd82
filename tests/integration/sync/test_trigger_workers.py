"""Trigger campaigns in real Celery worker processes on Redis: the sync hands its activities to
the `triggers` queue, deliveries go out on `webhooks`; workers killed with SIGKILL between the
decision and the delivery, and in the middle of an HTTP attempt, lose nothing, and every repeat
the receiver sees carries the same idempotency key."""

from __future__ import annotations

import os
import signal

import pytest

from campaigns.models import Delivery, DeliveryStatus
from campaigns.receiver import Receiver
from campaigns.services import campaign_save
from opportunities.models import Opportunity, SyncCycle, SyncStatus
from tests.integration.sync.test_sync_celery import start_worker, worker_env
from tests.processes import stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
SECRET = "whsec_worker_test_secret_0123"
ALL_QUEUES = "sync,default,triggers,webhooks"


def _kill(worker) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def test_a_change_fires_a_webhook_through_the_queues_and_kill_9_loses_and_doubles_nothing(
    org, synced_settings, tmp_path
):
    org.generate(opportunities=20, people=15, seed=41)
    receiver = Receiver(secret=SECRET).start()
    env = worker_env(
        org,
        tmp_path,
        "redis",
        TRIGGERS_DISPATCH="true",
        WEBHOOK_SWEEP_INTERVAL="1",
        WEBHOOK_CONNECT_TIMEOUT="1",
        WEBHOOK_READ_TIMEOUT="5",
        WEBHOOK_RETRY_BASE_SECONDS="0.2",
    )
    log = tmp_path / "worker.log"
    # A worker that syncs and decides, but does not deliver (no `webhooks` queue).
    worker = start_worker(env, log, queues="sync,default,triggers")
    try:
        wait_until(
            lambda: (
                Opportunity.objects.count() == 20
                and SyncCycle.objects.filter(status=SyncStatus.SUCCEEDED).exists()
            ),
            timeout=90,
            what="the initial load",
            log=log,
        )
        campaign_save(
            campaign=None,
            data={
                "name": "New buyers",
                "triggers": [
                    {
                        "trigger": "added_to_opportunity",
                        "constraints": [{"field": "Role", "operator": "is", "value": ["Economic Buyer"]}],
                    }
                ],
                "webhook": {"url": receiver.url, "secret": SECRET},
            },
        )
        [contact] = org.create("Contact", {"LastName": "Buyer", "Email": "buyer@example.com"})
        [deal] = org.create(
            "Opportunity", {"Name": "Queued", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
        )
        org.create(
            "OpportunityContactRole",
            {"OpportunityId": deal, "ContactId": contact, "Role": "Economic Buyer"},
            {
                "OpportunityId": deal,
                "ContactId": org.create("Contact", {"LastName": "Other"})[0],
                "Role": "Influencer",
            },
        )
        decided = wait_until(
            lambda: Delivery.objects.filter(status=DeliveryStatus.PENDING).first(),
            timeout=90,
            what="the decision (a pending delivery)",
            log=log,
        )
        _kill(worker)  # decided, not delivered
        assert receiver.requests == 0

        # A worker that delivers, killed while the receiver holds its request.
        receiver.hang_seconds = 3
        worker = start_worker(env, log, queues=ALL_QUEUES)
        wait_until(lambda: receiver.requests >= 1, timeout=60, what="the first attempt", log=log)
        _kill(worker)
        receiver.hang_seconds = 0
        assert Delivery.objects.get(pk=decided.pk).status == DeliveryStatus.PENDING

        worker = start_worker(env, log, queues=ALL_QUEUES)
        wait_until(
            lambda: Delivery.objects.filter(pk=decided.pk, status=DeliveryStatus.SUCCEEDED).exists(),
            timeout=90,
            what="the delivery after the restarts",
            log=log,
        )
    finally:
        stop(worker)
        receiver.stop()
    assert Delivery.objects.count() == 1  # one person matched the Role constraint, once
    delivery = Delivery.objects.get()
    assert receiver.requests >= 2  # the killed attempt reached the receiver, and so did the retry
    assert set(receiver.keys()) == {str(delivery.idempotency_key)}
    assert all(r.verified for r in receiver.received)
    assert receiver.received[-1].body["person"]["sf_contact_id"] == contact
    assert delivery.attempts.filter(status_code=200).count() == 1
