"""The hand-over from the sync: when a cycle has recorded activities, evaluate triggers now
(on the `triggers` queue) instead of waiting for the sweep."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.dispatch import receiver

from opportunities.signals import activities_recorded

from .models import Campaign

logger = logging.getLogger(__name__)


@receiver(activities_recorded)
def evaluate_soon(sender: Any, **kwargs: Any) -> None:
    if not settings.TRIGGERS_DISPATCH or not Campaign.objects.filter(is_active=True).exists():
        return
    from .tasks import evaluate

    try:
        evaluate.apply_async()
    except Exception:  # a broker hiccup must not fail the sync; the sweep evaluates soon anyway
        logger.warning("Could not queue trigger evaluation; the sweep will do it", exc_info=True)
