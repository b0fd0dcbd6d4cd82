"""Celery tasks of the sync (queue `sync`)."""

from __future__ import annotations

import logging

from celery import shared_task

from .service import sync_configured, sync_cycle_run, sync_history_prune

logger = logging.getLogger(__name__)


@shared_task(name="opportunities.sync.tasks.sync_cycle", acks_late=True)
def sync_cycle() -> str:
    """Beat runs this every SALESFORCE_SYNC_INTERVAL seconds."""
    if not sync_configured():
        return "not configured"
    cycle = sync_cycle_run(only_when_due=True)
    if cycle is None:
        return "skipped"
    return f"cycle {cycle.pk} {cycle.status}"


@shared_task(name="opportunities.sync.tasks.sync_history_prune")
def prune_sync_history() -> int:
    """Beat runs this hourly: a cycle every few seconds leaves many rows behind."""
    return sync_history_prune()
