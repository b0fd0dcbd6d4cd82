"""`manage.py rebuild_opportunity_totals`: recompute every person's opportunity totals row."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from opportunities.totals import rebuild_all_totals


class Command(BaseCommand):
    help = (
        "Recompute every person's opportunity totals, picklist values and latest activity times "
        "(after a restore, or to check the sync kept them right)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = rebuild_all_totals()
        self.stdout.write(f"Rebuilt the opportunity totals of {rows} people.")
