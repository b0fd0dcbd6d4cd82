"""Trigger campaigns (product.md §2): triggers on the activities the sync records, an optional
smart list the person must match too, a qualification rule and a webhook; and the outbox of
webhook deliveries with every attempt."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Qualification(models.TextChoices):
    EVERY_TIME = "every_time", "Every time"
    ONCE = "once", "Only once per person"
    ONCE_EVERY_DAYS = "once_every_days", "Once per person every N days"


class Campaign(models.Model):
    """A trigger campaign. `triggers` is a list in the format of contract §3
    (`[{"trigger": "added_to_opportunity", "constraints": [...]}]`), OR-ed; `smart_list` an optional
    smart-list definition (contract §4) the person must also match. Both are checked against the
    filter registry whenever they are saved and evaluated."""

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    # Only activities recorded after this moment trigger the campaign (set each time it is
    # activated): switching a campaign on never replays history.
    active_since = models.DateTimeField(null=True, blank=True)
    # A campaign whose evaluation fails at run time (a definition saved before validation refused
    # it, data a comparison cannot read) is paused by the evaluator: switched off, with when and why
    # in words, so the other campaigns keep deciding. Switching it on again clears both.
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.TextField(blank=True)
    triggers = models.JSONField(default=list)
    smart_list = models.JSONField(null=True, blank=True)
    qualification = models.CharField(
        max_length=20, choices=Qualification.choices, default=Qualification.EVERY_TIME
    )
    qualification_days = models.PositiveIntegerField(null=True, blank=True)
    webhook_url = models.URLField(max_length=2000)
    webhook_headers = models.JSONField(default=dict, blank=True)
    # Write-only: the API and the admin show only whether it is set and its first characters.
    webhook_secret = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "trigger campaign"
        constraints = [
            models.CheckConstraint(
                condition=~Q(qualification="once_every_days") | Q(qualification_days__gte=1),
                name="campaign_days_with_once_every_days",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None and not self.is_active

    @property
    def secret_hint(self) -> str:
        return f"{self.webhook_secret[:4]}…" if self.webhook_secret else ""


class CampaignMember(models.Model):
    """A person who has run through a campaign, and when last: what "only once" and "once every
    N days" are decided on, with one conditional UPDATE so two evaluators cannot both qualify."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members")
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    last_run_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "person"], name="campaign_member_once")]

    def __str__(self) -> str:
        return f"{self.person_id} in {self.campaign_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One webhook to send: the outbox row written in the same transaction as the decision that a
    person runs through a campaign for an activity. The body is frozen at decision time, so a
    retry or a resend sends the same request with the same idempotency key."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    # Activities are never deleted; no database constraint so pruning or merges never cascade here.
    activity = models.ForeignKey(
        "opportunities.Activity",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    is_test = models.BooleanField(default=False)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker claims a delivery until this moment; another may take it over only after. Each
    # claim has its own token: an attempt records its result only while the token is still its own.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A person runs through a campaign at most once per activity (product.md §2).
            models.UniqueConstraint(
                fields=["campaign", "activity"],
                condition=Q(activity__isnull=False),
                name="delivery_once_per_activity",
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.campaign} → {self.idempotency_key}"


class DeliveryAttempt(models.Model):
    """One HTTP attempt of a delivery: what the receiver answered, how fast, or why it failed."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"


class TriggerCursor(models.Model):
    """How far trigger evaluation has read the activity log (the highest activity id looked at).
    One row; moved in the same transaction as the deliveries it decided."""

    last_activity_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"after activity {self.last_activity_id}"
