"""The webhook request of contract §5: its JSON body (objects as the REST API shows them) and
its signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from opportunities.api.mixins import synced_data_context
from opportunities.api.serializers import ActivitySerializer, OpportunitySerializer
from people.api.serializers import PersonSerializer

if TYPE_CHECKING:
    from .models import Campaign, Delivery

SIGNATURE_HEADER = "OppSync-Signature"
IDEMPOTENCY_HEADER = "OppSync-Idempotency-Key"


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    return {"id": campaign.pk, "name": campaign.name}


def delivery_payload(delivery: Delivery, *, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of a delivery, built once when it is decided: a retry or a resend sends the
    values the person and opportunity had when the trigger fired."""
    context = context or synced_data_context()
    activity = delivery.activity
    assert activity is not None
    person = activity.person
    opportunity = activity.opportunity
    return {
        "id": str(delivery.idempotency_key),
        "campaign": campaign_json(delivery.campaign),
        "activity": dict(ActivitySerializer(activity, context=context).data),
        "person": dict(PersonSerializer(person, context=context).data) if person else None,
        "opportunity": dict(OpportunitySerializer(opportunity, context=context).data)
        if opportunity
        else None,
        "occurred_at": ActivitySerializer(activity, context=context).data["occurred_at"],
    }


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The raw body: compact, keys sorted, so every attempt of a delivery sends the same bytes."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (contract §5)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def signature_verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (the README shows the same lines): recompute, compare in constant
    time, and refuse a timestamp older than `tolerance` seconds (a replay)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
