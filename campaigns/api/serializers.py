"""Campaign and delivery JSON (contract §3). The webhook secret is write-only: responses say only
whether one is set and its first characters, except the one response that created it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import Campaign, Delivery, DeliveryAttempt
from ..selectors import delivery_counts
from ..services import qualification_json


class WebhookSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(help_text="http(s) URL on a public address")
    headers = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="extra request headers"
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        help_text="HMAC secret (16-200 characters); generated and shown once when left out",
    )
    secret_hint = serializers.CharField(read_only=True, help_text="the secret's first characters")


class CampaignSerializer(serializers.Serializer[Campaign]):
    """Input is checked by `services.campaign_save`; this describes the shape (and the schema)."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False, default=True)
    active_since = serializers.DateTimeField(read_only=True)
    paused_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="when the evaluator paused the campaign (its evaluation failed); null when not paused",
    )
    paused_reason = serializers.CharField(
        read_only=True, help_text="why it was paused, in words; set is_active to true to resume"
    )
    triggers = serializers.JSONField(
        help_text='[{"trigger": "added_to_opportunity" | "removed_from_opportunity" | "opportunity_updated", '
        '"field": "StageName" (opportunity_updated), "constraints": [...]}], OR-ed'
    )
    smart_list = serializers.JSONField(
        required=False, allow_null=True, help_text="a smart-list definition or null"
    )
    qualification = serializers.JSONField(
        required=False, help_text='"every_time" (default), "once" or {"once_every_days": n}'
    )
    webhook = WebhookSerializer()
    deliveries = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance: Campaign) -> dict[str, Any]:
        return {
            "id": instance.pk,
            "name": instance.name,
            "description": instance.description,
            "is_active": instance.is_active,
            "active_since": serializers.DateTimeField().to_representation(instance.active_since)
            if instance.active_since
            else None,
            "paused_at": serializers.DateTimeField().to_representation(instance.paused_at)
            if instance.paused_at
            else None,
            "paused_reason": instance.paused_reason,
            "triggers": instance.triggers,
            "smart_list": instance.smart_list,
            "qualification": qualification_json(instance),
            "webhook": {
                "url": instance.webhook_url,
                "headers": instance.webhook_headers,
                "secret_hint": instance.secret_hint,
            },
            "deliveries": delivery_counts(instance),
            "created_at": serializers.DateTimeField().to_representation(instance.created_at),
            "updated_at": serializers.DateTimeField().to_representation(instance.updated_at),
        }


class DeliveryAttemptSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    class Meta:
        model = DeliveryAttempt
        fields = ["at", "status_code", "ms", "error", "response_excerpt"]


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "idempotency_key",
            "activity",
            "person",
            "status",
            "is_test",
            "attempt_count",
            "next_attempt_at",
            "created_at",
            "delivered_at",
            "attempts",
        ]
