"""Models that belong to the whole site rather than to one app."""

from __future__ import annotations

from django.db import models
from rest_framework.authtoken.models import TokenProxy

from .currencies import currency_symbol, validate_currency_code
from .timezones import validate_time_zone


class SubscriptionSettings(models.Model):
    """The subscription's settings, one row (pk=1). Only Administrators may change them.

    `default_currency` is the currency every amount is shown in, whatever Salesforce's
    CurrencyIsoCode says (product.md §1, "One currency"). `time_zone` is the IANA zone every page
    shows dates in and smart lists compute relative dates and time frames in.
    """

    SINGLETON_PK = 1

    default_currency = models.CharField(
        max_length=3,
        default="USD",
        validators=[validate_currency_code],
        help_text="ISO 4217 code of the currency every amount is shown in.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone, e.g. Europe/Amsterdam: dates show in it and relative dates count in it.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "settings"
        verbose_name_plural = "settings"

    def __str__(self) -> str:
        return f"Settings (default currency {self.default_currency}, time zone {self.time_zone})"

    @property
    def currency_symbol(self) -> str:
        return currency_symbol(self.default_currency)

    @classmethod
    def load(cls) -> SubscriptionSettings:
        settings, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return settings


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the beat-scheduled heartbeat task, one row per host.

    It shows that beat and at least one worker are alive; the sync status page reads it.
    """

    hostname = models.CharField(max_length=255, unique=True)
    last_beat_at = models.DateTimeField()
    beats = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_beat_at:%Y-%m-%d %H:%M:%S}"


class ApiToken(TokenProxy):
    """An API token as the admin shows it: by user and key prefix. The key itself is shown once,
    when the token is created (DRF's own admin titles every page with the whole key)."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.key[:6]}… ({self.user})"


class ThrottleCounter(models.Model):
    """Requests of one client in one throttle window, counted with one atomic upsert (the
    database cache's read-then-write let about a quarter more through under concurrent clients).
    Used when there is no Redis; expired windows are pruned hourly."""

    key = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
