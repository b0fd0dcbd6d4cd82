"""API rate limits that hold under concurrent clients (P9).

DRF's throttles keep a request history in the cache and write it back after reading it; two
requests of one client at the same moment both read the same history, so the limit leaks (about
23 % more got through with 8 clients on one token). These count in fixed windows with one atomic
step: Redis INCR when Redis is configured, an upsert with RETURNING in the database otherwise. A
throttled client is logged once per window, not on every refused request.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from ..models import ThrottleCounter

logger = logging.getLogger(__name__)


def window_count(key: str, window_seconds: int) -> int:
    """Count one more request under `key` in the current window; return the window's count."""
    window = int(time.time() // window_seconds)
    full_key = f"throttle:{key}:{window}"
    if settings.REDIS_URL:
        cache.add(full_key, 0, timeout=window_seconds + 1)
        return int(cache.incr(full_key))
    table = ThrottleCounter._meta.db_table
    expires_at = timezone.now() + dt.timedelta(seconds=window_seconds + 1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, count, expires_at) VALUES (%s, 1, %s) "  # noqa: S608  # our own table name
            f"ON CONFLICT (key) DO UPDATE SET count = {table}.count + 1 RETURNING count",
            [full_key, expires_at],
        )
        return int(cursor.fetchone()[0])


def counters_prune() -> int:
    """Delete the counters of windows that are over (beat runs this hourly)."""
    deleted, _ = ThrottleCounter.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


class _AtomicWindowThrottle:
    """Mixed into DRF's user and anonymous throttles: same rates and keys, atomic counting."""

    # Set by DRF's SimpleRateThrottle from the rate ("1200/minute").
    rate: str | None
    num_requests: int
    duration: int
    window_seconds: int = 60

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]  # DRF's SimpleRateThrottle
        if key is None:
            return True
        self.window_seconds = int(self.duration)
        count = window_count(key, self.window_seconds)
        if count <= self.num_requests:
            return True
        if count == self.num_requests + 1:  # the first refusal of this window
            logger.warning(
                "Throttled %s: more than %s requests in %s s", key, self.num_requests, self.window_seconds
            )
        return False

    def wait(self) -> float:
        return float(self.window_seconds - time.time() % self.window_seconds)


class AtomicUserRateThrottle(_AtomicWindowThrottle, UserRateThrottle):
    pass


class AtomicAnonRateThrottle(_AtomicWindowThrottle, AnonRateThrottle):
    pass
