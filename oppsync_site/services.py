"""Writes that belong to the whole site."""

from __future__ import annotations

import logging

from django.db.models import F
from django.utils import timezone

from .models import SubscriptionSettings, WorkerHeartbeat

logger = logging.getLogger(__name__)


def heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    now = timezone.now()
    beat, created = WorkerHeartbeat.objects.get_or_create(
        hostname=hostname, defaults={"last_beat_at": now, "beats": 1}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=beat.pk).update(last_beat_at=now, beats=F("beats") + 1)
        beat.refresh_from_db()
    logger.info("Heartbeat %d from %s", beat.beats, hostname)
    return beat


def subscription_settings_update(
    *, default_currency: str | None = None, time_zone: str | None = None
) -> SubscriptionSettings:
    """Change the settings; a bad value raises ValidationError and changes nothing."""
    settings = SubscriptionSettings.load()
    if default_currency is not None:
        settings.default_currency = default_currency
    if time_zone is not None:
        settings.time_zone = time_zone
    settings.full_clean()
    settings.save()
    return settings
