"""One sync cycle at a time across all workers and machines, with fencing.

A lease row in the database (`SyncLease`): acquiring is one conditional UPDATE (free or
expired → ours, token + 1), so two workers can never both hold it, and no cache eviction can
drop it. The holder renews it from a heartbeat thread while it works (a long Composite call, a
Bulk job wait, a big delete), and it expires on its own if the holder dies (kill -9).

Renewing is also the fence: every write of a cycle runs inside `fenced()`, whose first statement
renews the lease *for this owner and token* in the write's own transaction. A holder that lost
the lease gets `SyncLeaseLost` and writes nothing; on PostgreSQL the renewed row stays locked
until the write commits, so nobody can take the lease over in the middle of a write.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..models import SyncLease

logger = logging.getLogger(__name__)

LEASE_NAME = "salesforce-sync"


class SyncLeaseLost(Exception):
    """Another worker holds the sync lease now: this cycle must stop writing."""


class SyncLock:
    def __init__(self, lease_seconds: float | None = None, *, heartbeat: bool = True) -> None:
        self.lease = dt.timedelta(seconds=float(lease_seconds or settings.SALESFORCE_SYNC_LOCK_SECONDS))
        self.owner = uuid.uuid4().hex
        self.token = 0
        self.held = False
        self.use_heartbeat = heartbeat
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # --- acquiring and releasing ------------------------------------------------------------------
    def acquire(self) -> bool:
        try:
            claimed = self._claim()
            if not claimed:
                with transaction.atomic():  # the very first cycle: the row may not exist yet
                    _, created = SyncLease.objects.get_or_create(name=LEASE_NAME)
                claimed = self._claim() if created else False
        except DatabaseError as error:
            # SQLite: another worker is in the middle of a write ("database is locked"): it holds
            # the lease, or is about to.
            logger.info("Sync lease busy (%s)", error)
            return False
        self.held = bool(claimed)
        if self.held and self.use_heartbeat:
            self._start_heartbeat()
        return self.held

    def _claim(self) -> bool:
        """One conditional UPDATE: the lease becomes ours if it is free or expired."""
        now = timezone.now()
        with transaction.atomic():
            claimed = (
                SyncLease.objects.filter(name=LEASE_NAME)
                .filter(Q(owner="") | Q(expires_at__isnull=True) | Q(expires_at__lt=now))
                .update(owner=self.owner, token=F("token") + 1, expires_at=now + self.lease)
            )
            if claimed:
                self.token = SyncLease.objects.values_list("token", flat=True).get(name=LEASE_NAME)
        return bool(claimed)

    def release(self) -> None:
        self._stop_heartbeat()
        if self.held:
            SyncLease.objects.filter(name=LEASE_NAME, owner=self.owner, token=self.token).update(
                owner="", expires_at=timezone.now()
            )
        self.held = False

    # --- renewing and fencing ---------------------------------------------------------------------
    def renew(self) -> None:
        """Extend the lease; `SyncLeaseLost` when it is no longer ours."""
        if not self.held:
            raise SyncLeaseLost("This cycle does not hold the sync lease.")
        renewed = SyncLease.objects.filter(name=LEASE_NAME, owner=self.owner, token=self.token).update(
            expires_at=timezone.now() + self.lease
        )
        if not renewed:
            self.held = False
            raise SyncLeaseLost(
                "Another worker took over the sync lease (this one was paused past its expiry); "
                "this cycle stopped without writing more."
            )

    @contextmanager
    def fenced(self) -> Iterator[None]:
        """A transaction that writes only while the lease is ours (see the module docstring)."""
        with transaction.atomic():
            self.renew()
            yield

    # --- heartbeat --------------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="sync-lease-heartbeat", daemon=True)
        self._heartbeat.start()

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None

    def _beat(self) -> None:
        """Renew every third of the lease while the cycle runs, whatever it is waiting for."""
        try:
            while not self._stop.wait(self.lease.total_seconds() / 3):
                try:
                    self.renew()
                except SyncLeaseLost:
                    logger.warning("Sync lease lost; the cycle will stop at its next write")
                    return
                except DatabaseError as error:  # a busy SQLite: the next beat tries again
                    logger.info("Sync lease renewal postponed: %s", error)
        finally:
            connection.close()  # this thread's own connection
