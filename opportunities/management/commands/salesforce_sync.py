"""`manage.py salesforce_sync [--reconcile]`: one sync cycle in the foreground (contract §2).

Exits 0 when the cycle completed, records set aside included (each is printed: object, Salesforce
id, reason; the sync retries them by itself); non-zero only when the cycle itself could not run."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from opportunities.models import SyncStatus
from opportunities.sync.service import sync_cycle_run
from opportunities.sync.set_aside import set_aside_listing

PRINTED_SET_ASIDE = 100


class Command(BaseCommand):
    help = "Run one Salesforce sync cycle now and print per-object counts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reconcile", action="store_true", help="also compare ids to find hard deletes")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, reconcile: bool, no_progress: bool, **options: Any) -> None:
        bars: dict[str, tqdm] = {}

        def progress(sobject: str, count: int, total: int) -> None:
            # A bar only for long loads; a quick incremental cycle prints just its counts.
            if no_progress or (sobject not in bars and total < 5000):
                return
            bar = bars.setdefault(
                sobject, tqdm(total=total or None, desc=sobject, unit="rec", file=self.stderr)
            )
            bar.update(count)

        # An operator running a cycle by hand sees the org's fields as they are now, whatever an
        # org's If-Modified-Since says.
        cycle = sync_cycle_run(reconcile=reconcile, progress=progress, always_describe=True)
        for bar in bars.values():
            bar.close()
        if cycle is None:
            raise CommandError("Another sync cycle is running; try again when it has finished.")
        for run in cycle.object_runs.order_by("id"):
            self.stdout.write(
                f"{run.sobject:<24} new {run.created_count:>7}  updated {run.updated_count:>7}  deleted {run.deleted_count:>6}  "
                f"skipped {run.skipped_count:>7}  failed {run.failed_count:>4}"
            )
        self.stdout.write(f"API calls: {cycle.api_calls}  duration: {cycle.duration_seconds or 0:.1f}s")
        if cycle.status != SyncStatus.SUCCEEDED:
            raise CommandError(f"Sync {cycle.status}: {cycle.error_message}")
        # The cycle completed: records it could not store do not make it fail (they are retried).
        # The first hundred: after a mass failure a terminal gets a count, not 100,000 lines.
        set_aside, total = set_aside_listing(PRINTED_SET_ASIDE)
        if set_aside:
            self.stdout.write(
                f"{total} record(s) set aside (retried by id until they apply; see Sync status):"
            )
            for row in set_aside:
                self.stdout.write(f"  {row.sobject} {row.sf_id}: {row.reason}")
            if total > len(set_aside):
                self.stdout.write(f"  … and {total - len(set_aside)} more on the Sync status page")
