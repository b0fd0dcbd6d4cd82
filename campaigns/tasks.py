"""Celery tasks of trigger campaigns: evaluation on queue `triggers`, delivery on `webhooks`
(routes in settings). The sync hands over through a signal (`receivers.py`), never an import."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from .triggers import evaluate_pending
from .webhooks import attempt, due_deliveries

logger = logging.getLogger(__name__)


def _deliveries_enqueue(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        deliver.apply_async((delivery_id,))


def delivery_queue(delivery_id: int) -> None:
    """Queue one delivery now (a test delivery, a resend); if the broker is away, the sweep
    sends it within seconds of its return."""
    try:
        deliver.apply_async((delivery_id,))
    except Exception:
        logger.warning("Could not queue delivery %s; the sweep will", delivery_id, exc_info=True)


@shared_task(name="campaigns.triggers.evaluate", acks_late=True)
def evaluate() -> int:
    """Decide the campaigns of the activities recorded since the last evaluation; each batch's
    deliveries are queued once the batch has committed."""
    return evaluate_pending(on_decided=lambda ids: transaction.on_commit(lambda: _deliveries_enqueue(ids)))


@shared_task(name="campaigns.webhooks.deliver", acks_late=True)
def deliver(delivery_id: int) -> str:
    """One attempt; a retry is queued with its backoff as countdown (and found by the sweep if
    that message is lost)."""
    delay = attempt(delivery_id)
    if delay is not None:
        deliver.apply_async((delivery_id,), countdown=delay)
    return "retry" if delay is not None else "done"


@shared_task(name="campaigns.webhooks.sweep")
def sweep() -> int:
    """Beat runs this every few seconds: deliveries due and unclaimed (a lost message, a killed
    worker's claim that expired) are queued again; and any activity not yet evaluated is."""
    evaluate.apply_async()
    due = due_deliveries()
    _deliveries_enqueue(due)
    return len(due)
