"""Time in the emulated org: millisecond UTC timestamps in Salesforce's `+0000` form."""

from __future__ import annotations

import datetime as dt
import threading


def format_datetime(value: dt.datetime) -> str:
    """`2013-05-20T20:49:32.000+0000`: what REST returns; sorts as text in time order."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> dt.datetime:
    normalized = text.replace("Z", "+00:00")
    if normalized.endswith("+0000"):
        normalized = normalized[:-5] + "+00:00"
    return dt.datetime.fromisoformat(normalized).astimezone(dt.UTC)


def bulk_datetime(text: str) -> str:
    """Bulk API 2.0 CSV writes datetimes as `2013-05-20T20:49:32.000Z`."""
    return text.replace("+0000", "Z")


class Clock:
    """Hands out strictly increasing millisecond timestamps, so SystemModstamp never goes back
    within one store (a burst can still share one stamp on purpose)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        with self._lock:
            now = dt.datetime.now(dt.UTC)
            current = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if current <= self._last:
                current = self._last + dt.timedelta(milliseconds=1)
            self._last = current
            return current
