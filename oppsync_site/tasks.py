"""Site-wide Celery tasks."""

from __future__ import annotations

import socket

from celery import shared_task

from .services import heartbeat_record


@shared_task(name="oppsync_site.tasks.heartbeat")
def heartbeat() -> None:
    """Beat schedules this; it proves that beat and a worker are alive."""
    heartbeat_record(hostname=socket.gethostname())


@shared_task(name="oppsync_site.tasks.throttle_counters_prune")
def throttle_counters_prune() -> int:
    """Beat runs this hourly: the API throttle's counters of windows that are over."""
    from .api.throttling import counters_prune

    return counters_prune()
