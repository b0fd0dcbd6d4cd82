"""IANA time zones, validated with the standard library's `zoneinfo` (no hand-typed list)."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError


@cache
def time_zone_names() -> frozenset[str]:
    """Every IANA zone the system's tz database (or the tzdata package) knows."""
    return frozenset(zoneinfo.available_timezones())


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(time_zone_names())]


def validate_time_zone(value: str) -> None:
    """Accept only an exact IANA name ("Europe/Amsterdam"); "europe/amsterdam" or "CET+1" are refused."""
    if value not in time_zone_names():
        raise ValidationError(
            "%(value)r is not an IANA time zone; use a name such as UTC, Europe/Amsterdam or America/New_York.",
            code="invalid_time_zone",
            params={"value": value},
        )


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone of a stored, validated name; UTC when the name is (no longer) known."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")
