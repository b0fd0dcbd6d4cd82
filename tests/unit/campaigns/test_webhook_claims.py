"""P11 case 5, in this process against the real receiver: an attempt has a total deadline however
slowly the receiver trickles its answer, a claim outlasts that deadline, and an attempt whose claim
ran out (a stalled worker) cannot overwrite the result of the attempt that took over."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Delivery, DeliveryStatus
from campaigns.receiver import Receiver
from campaigns.webhooks import CLAIM_MARGIN_SECONDS, attempt, claim, sample_delivery_create
from tests.processes import wait_until

SECRET = "whsec_claims_test_secret_0123"


@pytest.fixture
def receiver():
    running = Receiver(secret=SECRET, trickle_seconds=0.2).start()
    yield running
    running.stop()


@pytest.fixture
def delivery(receiver, settings) -> Delivery:
    settings.WEBHOOK_READ_TIMEOUT = 5  # a byte every 0.2 s never trips it
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.01
    campaign = Campaign.objects.create(
        name="Claims",
        triggers=[{"trigger": "added_to_opportunity"}],
        webhook_url=receiver.url,
        webhook_secret=SECRET,
    )
    return sample_delivery_create(campaign)


@pytest.mark.django_db
def test_a_trickling_receiver_is_cut_at_the_attempt_deadline(receiver, delivery, settings):
    settings.WEBHOOK_ATTEMPT_SECONDS = 1.5
    receiver.trickle_next = 1  # ~150 bytes at 0.2 s each: half a minute, every read on time

    assert attempt(delivery.pk) is not None  # a retry is due: the attempt failed, and ended

    [first] = delivery.attempts.all()
    assert first.status_code is None
    assert first.error == "timed out: no complete answer within 1.5 s (WEBHOOK_ATTEMPT_SECONDS)"
    wait_until(lambda: receiver.trickles_ended == 1, timeout=30, what="the receiver to see the hang-up")
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert attempt(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempt_count == 2


@pytest.mark.django_db
def test_a_claim_outlasts_the_attempt_deadline(delivery, settings):
    settings.WEBHOOK_ATTEMPT_SECONDS = 40
    now = timezone.now()
    assert claim(delivery.pk, now) is not None
    delivery.refresh_from_db()
    assert delivery.claimed_until == now + dt.timedelta(seconds=40 + CLAIM_MARGIN_SECONDS)
    assert claim(delivery.pk, now + dt.timedelta(seconds=40)) is None  # still held at the deadline


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_attempt_whose_claim_ran_out_does_not_overwrite_the_one_that_took_over(
    receiver, delivery, settings
):
    settings.WEBHOOK_ATTEMPT_SECONDS = 10
    receiver.trickle_next = 1
    results: list[float | None] = []

    def stalled_worker() -> None:
        try:
            results.append(attempt(delivery.pk))
        finally:
            connection.close()

    first = threading.Thread(target=stalled_worker)
    first.start()
    wait_until(lambda: receiver.requests == 1, timeout=30, what="the first attempt to reach the receiver")
    # The first worker is stalled past its claim (as a paused process would be): the claim runs
    # out and another attempt takes the delivery over and succeeds.
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    assert attempt(delivery.pk) is None
    first.join(timeout=60)
    assert not first.is_alive()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED  # before the fix: back to pending, a retry due
    assert delivery.attempt_count == 1 and delivery.delivered_at is not None
    assert delivery.claimed_until is None and delivery.claim_token is None
    assert results == [None]  # the late attempt schedules no retry
    success = delivery.attempts.get(error="")
    late = delivery.attempts.exclude(pk=success.pk).get()
    assert success.status_code == 200
    assert late.error.startswith("timed out") and "not counted" in late.error
    assert len(receiver.received) == 1 and receiver.requests == 2
