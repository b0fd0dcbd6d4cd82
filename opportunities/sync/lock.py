"""One sync cycle at a time across all workers and machines.

A lease in the shared cache (Redis, or the database cache): `add` is atomic, the holder renews it
while it works, and it expires on its own if the holder dies (kill -9), so a crashed worker never
blocks the sync for longer than the lease.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.cache import cache

LOCK_KEY = "oppsync:salesforce-sync-lock"


class SyncLock:
    def __init__(self, lease_seconds: float | None = None) -> None:
        self.lease_seconds = int(lease_seconds or settings.SALESFORCE_SYNC_LOCK_SECONDS)
        self.owner = uuid.uuid4().hex
        self.held = False

    def acquire(self) -> bool:
        self.held = bool(cache.add(LOCK_KEY, self.owner, timeout=self.lease_seconds))
        return self.held

    def renew(self) -> None:
        """Extend the lease; called between pages so a long initial load keeps it."""
        if self.held and cache.get(LOCK_KEY) == self.owner:
            cache.touch(LOCK_KEY, timeout=self.lease_seconds)

    def release(self) -> None:
        if self.held and cache.get(LOCK_KEY) == self.owner:
            cache.delete(LOCK_KEY)
        self.held = False
