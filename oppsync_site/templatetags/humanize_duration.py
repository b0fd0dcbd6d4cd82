"""Durations and counts in words for the sync status page."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def seconds_ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{duration_words(seconds)} ago"


@register.filter
def duration_words(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@register.filter
def intword_plain(value: int | None) -> str:
    """12345678 -> "12,345,678" (digits grouped, never abbreviated)."""
    if value is None:
        return "—"
    return f"{int(value):,}"


@register.filter
def time_ago(moment: dt.datetime | None) -> str:
    """A moment as "12 s ago" ("never" when there is none)."""
    if moment is None:
        return "never"
    return seconds_ago((timezone.now() - moment).total_seconds())
