"""Webhook delivery (queue `webhooks`): one attempt at a time from the outbox, each logged.

A delivery is claimed with a conditional UPDATE before its attempt, so two workers (the task and
the sweep, or a task redelivered after a worker died) never send it at the same moment. Each
attempt has a total deadline (`WEBHOOK_ATTEMPT_SECONDS`, however slowly the receiver answers) and
the claim outlasts it by a margin; the claim carries a token, and the attempt records its result
only while the token is still its own: a worker stalled past its claim, whose delivery another
worker has sent since, cannot overwrite that result. A worker killed mid-attempt leaves a claim
that expires; the sweep then sends it again with the same idempotency key, which is how the
receiver recognises a repeat. Retries back off exponentially
with jitter up to `WEBHOOK_MAX_ATTEMPTS`; then the delivery is failed. A 2xx answer is success.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
import uuid
from typing import Any

import requests
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from opportunities.models import Activity, ActivityType

from .models import Campaign, Delivery, DeliveryAttempt, DeliveryStatus
from .payload import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    body_bytes,
    campaign_json,
    delivery_payload,
    signature,
)
from .targets import AttemptDeadline, RefusedConnection, webhook_session

logger = logging.getLogger(__name__)

RESPONSE_EXCERPT = 1024
# How much longer than an attempt's deadline its claim lasts: loading the delivery before the
# request and recording the result after it.
CLAIM_MARGIN_SECONDS = 10.0
# Headers a campaign may not set: OppSync's own, and what the HTTP stack must decide.
RESERVED_HEADERS = {
    SIGNATURE_HEADER.lower(),
    IDEMPOTENCY_HEADER.lower(),
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
}
_session: requests.Session | None = None


def _http() -> requests.Session:
    global _session
    if _session is None:
        _session = webhook_session()
    return _session


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: exponential, capped, with
    jitter (half fixed, half random) so many failed deliveries do not come back in step."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1)
    capped = min(base, settings.WEBHOOK_RETRY_MAX_SECONDS)
    return capped / 2 + random.uniform(0, capped / 2)  # jitter, not cryptography


def _due_and_free(now: dt.datetime) -> Q:
    """Pending, its attempt due, and nobody holding it (or the holder's claim ran out)."""
    return (
        Q(status=DeliveryStatus.PENDING)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    )


def claim_seconds() -> float:
    """How long a claim lasts: longer than the longest attempt (its total deadline) plus margin."""
    return settings.WEBHOOK_ATTEMPT_SECONDS + CLAIM_MARGIN_SECONDS


def claim(delivery_id: int, now: dt.datetime) -> uuid.UUID | None:
    """Claim a due, free delivery for one attempt; the claim's token, or None when it is not
    due or someone else holds it."""
    token = uuid.uuid4()
    claimed = Delivery.objects.filter(_due_and_free(now), pk=delivery_id).update(
        claimed_until=now + dt.timedelta(seconds=claim_seconds()), claim_token=token
    )
    return token if claimed == 1 else None


def request_headers(campaign: Campaign, payload: dict[str, Any], body: bytes) -> dict[str, str]:
    headers = {str(k): str(v) for k, v in (campaign.webhook_headers or {}).items()}
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": "OppSync-Webhooks/1",
            # One connection per attempt, never kept alive: each is watched for the attempt's
            # total deadline from its connect (targets.py).
            "Connection": "close",
            IDEMPOTENCY_HEADER: str(payload["id"]),
            SIGNATURE_HEADER: signature(campaign.webhook_secret, int(time.time()), body),
        }
    )
    return headers


def attempt(delivery_id: int) -> float | None:
    """Make one attempt of a delivery if it is due and nobody else holds it. Returns the seconds
    until a retry is due, or None when there is nothing more to do."""
    now = timezone.now()
    token = claim(delivery_id, now)
    if token is None:
        return None
    delivery = Delivery.objects.select_related("campaign").get(pk=delivery_id)
    campaign = delivery.campaign
    body = body_bytes(delivery.payload)
    started = time.monotonic()
    status_code: int | None = None
    error = ""
    excerpt = b""
    deadline = AttemptDeadline(settings.WEBHOOK_ATTEMPT_SECONDS)
    try:
        with deadline:
            response = _http().post(
                campaign.webhook_url,
                data=body,
                headers=request_headers(campaign, delivery.payload, body),
                timeout=(settings.WEBHOOK_CONNECT_TIMEOUT, settings.WEBHOOK_READ_TIMEOUT),
                allow_redirects=False,
                stream=True,
            )
            try:
                status_code = response.status_code
                excerpt = _excerpt(response, deadline)
            finally:
                response.close()
        if 200 <= status_code < 300:
            pass  # a 2xx that came in time is the receiver's answer, even if its body was cut
        elif deadline.expired:  # cut mid-headers (http.client ends them at the hang-up) or mid-body
            error = f"{_over(deadline)}; it had begun to answer HTTP {status_code}"
        else:
            error = f"HTTP {status_code}" + (
                " (redirects are not followed)" if 300 <= status_code < 400 else ""
            )
    except requests.Timeout:
        error = "timed out"
    except requests.RequestException as exc:
        error = _over(deadline) or _request_error(exc)
    except SoftTimeLimitExceeded:
        raise  # the worker must stop; the claim runs out and the sweep sends it again
    except Exception as exc:
        # Whatever else fails (a header http.client cannot encode, a bug) is a counted failed
        # attempt: re-raised, the delivery would be retried forever, never counted.
        logger.warning("Webhook attempt of delivery %s failed unexpectedly", delivery_id, exc_info=True)
        error = _over(deadline) or f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return _record(delivery, token, status_code, elapsed_ms, error, excerpt.decode("utf-8", "replace"))


def _over(deadline: AttemptDeadline) -> str:
    """The error of an attempt cut at its total deadline ("" if it was not)."""
    if not deadline.expired:
        return ""
    return f"timed out: no complete answer within {deadline.seconds:g} s (WEBHOOK_ATTEMPT_SECONDS)"


def _excerpt(response: requests.Response, deadline: AttemptDeadline) -> bytes:
    """The first bytes of the answer, as far as they came before the deadline: a 2xx status
    that arrived in time is the receiver's answer even if the rest of its body trickles."""
    received = b""
    try:
        while len(received) < RESPONSE_EXCERPT:
            chunk = response.raw.read1(RESPONSE_EXCERPT - len(received), decode_content=True)
            if not chunk:
                break
            received += chunk
    except Exception:
        if not deadline.expired:
            raise
    return received


def _request_error(error: requests.RequestException) -> str:
    """Words for a failed request a marketer can act on (not urllib3's pool names)."""
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    if isinstance(reason, RefusedConnection):
        return f"refused: {reason.detail}"
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS handshake failed: {reason}"[:300]
    if isinstance(error, requests.ConnectionError):
        found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(reason))
        return f"could not connect: {found.group(1).strip() if found else reason}"[:300]
    return f"{type(error).__name__}: {error}"[:500]


def _record(
    delivery: Delivery, token: uuid.UUID, status_code: int | None, ms: int, error: str, excerpt: str
) -> float | None:
    """Log the attempt and move the delivery on, in one transaction, if the claim is still this
    attempt's own. If it is not (the worker stalled past its claim and another attempt took the
    delivery over), the attempt is logged as not counted and the delivery is left alone."""
    now = timezone.now()
    attempts = delivery.attempt_count + 1
    changes: dict[str, Any] = {
        "attempt_count": F("attempt_count") + 1,
        "claimed_until": None,
        "claim_token": None,
    }
    delay: float | None = None
    if not error:
        changes.update(status=DeliveryStatus.SUCCEEDED, delivered_at=now, next_attempt_at=None)
    elif attempts >= settings.WEBHOOK_MAX_ATTEMPTS or error.startswith("refused"):
        changes.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    else:
        delay = retry_delay(attempts)
        changes.update(next_attempt_at=now + dt.timedelta(seconds=delay))
    with transaction.atomic():
        counted = Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(**changes) == 1
        note = (
            "" if counted else "not counted: its claim had run out and another attempt took the delivery over"
        )
        DeliveryAttempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=status_code,
            ms=ms,
            error="; ".join(part for part in (error, note) if part),
            response_excerpt=excerpt,
        )
    level = logging.INFO if not error and counted else logging.WARNING
    logger.log(
        level,
        "Webhook %s attempt %s: %s in %s ms%s",
        delivery.idempotency_key,
        attempts,
        error or status_code,
        ms,
        f" ({note})" if note else "",
    )
    return delay if counted else None


def due_deliveries(limit: int = 1000) -> list[int]:
    """Pending deliveries whose attempt is due and that nobody holds: what the sweep hands out
    (after a lost task message, a killed worker, a retry whose countdown message was lost)."""
    return list(
        Delivery.objects.filter(_due_and_free(timezone.now()))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def resend(delivery: Delivery) -> Delivery:
    """Send a failed (or any finished) delivery again: the same body and idempotency key, a
    fresh budget of attempts."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING,
        attempt_count=0,
        next_attempt_at=timezone.now(),
        claimed_until=None,
        claim_token=None,
    )
    delivery.refresh_from_db()
    return delivery


def sample_delivery_create(campaign: Campaign) -> Delivery:
    """A delivery marked as a test, with a sample body shaped like a real one (the latest activity
    when there is one), so a receiver can be tried before a trigger fires."""
    delivery = Delivery(campaign=campaign, is_test=True, payload={}, next_attempt_at=timezone.now())
    sample = (
        Activity.objects.filter(person__isnull=False)
        .select_related("person", "opportunity")
        .order_by("-pk")
        .first()
    )
    if sample is not None:
        delivery.activity = sample
        delivery.payload = {**delivery_payload(delivery), "test": True}
        delivery.activity = None
    else:
        delivery.payload = {
            "id": str(delivery.idempotency_key),
            "campaign": campaign_json(campaign),
            "activity": {"type": ActivityType.ADDED_TO_OPPORTUNITY.value},
            "person": None,
            "opportunity": None,
            "occurred_at": timezone.now().isoformat(),
            "test": True,
        }
    delivery.person = None
    delivery.save()
    return delivery
