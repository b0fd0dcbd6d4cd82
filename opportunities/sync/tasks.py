"""Celery tasks of the sync (queue `sync`)."""

from __future__ import annotations

import logging

from celery import shared_task

from ..models import CycleTrigger
from ..totals import coverage_is_current, rebuild_all_totals
from .service import sync_configured, sync_cycle_run, sync_history_prune, sync_wake_run
from .wake import wake_pending

logger = logging.getLogger(__name__)


@shared_task(name="opportunities.sync.tasks.sync_cycle", acks_late=True)
def sync_cycle() -> str:
    """Beat runs this every SALESFORCE_SYNC_INTERVAL seconds."""
    if not sync_configured():
        return "not configured"
    cycle = sync_cycle_run(only_when_due=True, trigger=CycleTrigger.POLL)
    # Change events that came during the cycle: the one more cycle they ask for.
    if cycle is not None and wake_pending():
        sync_wake_run()
    if cycle is None:
        return "skipped"
    return f"cycle {cycle.pk} {cycle.status}"


@shared_task(name="opportunities.sync.tasks.sync_wake", acks_late=True)
def sync_wake() -> str:
    """The change listener queues this after a burst of change events (`wake.py`): the cycles they
    ask for, one at a time; a cycle already running absorbs it."""
    if not sync_configured():
        return "not configured"
    claim = sync_wake_run()
    return claim.outcome or "another cycle is running"


@shared_task(name="opportunities.sync.tasks.sync_history_prune")
def prune_sync_history() -> int:
    """Beat runs this hourly: a cycle every few seconds leaves many rows behind."""
    return sync_history_prune()


@shared_task(name="opportunities.sync.tasks.totals_coverage_ensure")
def totals_coverage_ensure() -> str:
    """Beat runs this every minute: when describe shows a picklist field the totals rows do not
    cover yet (or after an upgrade, none), rebuild them so smart lists can read it there."""
    if coverage_is_current():
        return "current"
    rows = rebuild_all_totals()
    logger.info("Opportunity totals rebuilt for %s people; they cover the new picklist fields", rows)
    return "rebuilt"
