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


# How far the org's clock is from this machine's (the control API's `clock_offset_seconds`): an
# org whose clock runs behind or ahead of the sync's host, as real orgs and hosts drift.
ORG_CLOCK_OFFSET = [dt.timedelta(0)]


def org_now() -> dt.datetime:
    """The org's current time."""
    return dt.datetime.now(dt.UTC) + ORG_CLOCK_OFFSET[0]


class Clock:
    """Hands out strictly increasing millisecond timestamps, so SystemModstamp never goes back
    within one store (a burst can still share one stamp on purpose)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    def restart(self) -> None:
        """After the org's clock was set (the control API): stamps continue from its new time."""
        with self._lock:
            self._last = org_now() - dt.timedelta(milliseconds=1)

    def now(self) -> dt.datetime:
        with self._lock:
            now = org_now()
            current = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if current <= self._last:
                current = self._last + dt.timedelta(milliseconds=1)
            self._last = current
            return current
