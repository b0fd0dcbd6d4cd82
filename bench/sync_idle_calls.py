"""Benchmark: the Salesforce API calls of an idle sync cycle, counted by the emulator, and the
calls a day that makes at the configured interval.

    .venv/bin/python -m bench.sync_idle_calls [--interval 5]
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from bench.common import django_for, start_org

# One daily reconcile at a million opportunities: `SELECT Id` of every object in pages of 2,000,
# plus the formula refresh of Opportunity (Id and calculated fields, pages of 2,000).
BIG_ORG_ROWS = {
    "Opportunity": 1_000_000,
    "OpportunityContactRole": 2_500_000,
    "Contact": 700_000,
    "Lead": 300_000,
}
RECONCILE_PAGE_ROWS = 2000
FORMULA_PAGES = 1_000_000 // RECONCILE_PAGE_ROWS


def reconcile_calls(rows: Mapping[str, int]) -> int:
    """The API calls of one daily id reconciliation of an org with these row counts: a page of
    `SELECT Id` per 2,000 rows of each object, plus the Opportunity formula refresh's pages."""
    pages = sum(-(-count // RECONCILE_PAGE_ROWS) for count in rows.values())
    return pages + -(-rows.get("Opportunity", 0) // RECONCILE_PAGE_ROWS)


def big_org_reconcile_calls() -> int:
    """`reconcile_calls` at a million opportunities (BIG_ORG_ROWS)."""
    return reconcile_calls(BIG_ORG_ROWS)


def day_with_a_reconcile(idle_calls: float, durations: list[float], org_limit: int, interval: float) -> None:
    """Project a day with one reconcile at 1M opportunities / 2.5M roles through the sync's own
    interval estimator (cycles written as the engine writes them), and the worst
    change-to-visible latency in the hour after the reconcile: the interval then, plus a cycle."""
    import datetime as dt
    import statistics

    from django.utils import timezone

    from opportunities.models import SyncCycle, SyncStatus
    from opportunities.sync.schedule import effective_interval

    reconcile_calls = big_org_reconcile_calls()
    SyncCycle.objects.all().delete()
    now = timezone.now()
    SyncCycle.objects.create(
        started_at=now - dt.timedelta(minutes=30),
        ended_at=now - dt.timedelta(minutes=25),
        status=SyncStatus.SUCCEEDED,
        api_calls=reconcile_calls,
        api_usage_max=org_limit,
        reconciled=True,
    )
    for n in range(19):  # the steady cycles since
        at = now - dt.timedelta(minutes=20 - n)
        SyncCycle.objects.create(
            started_at=at,
            ended_at=at + dt.timedelta(seconds=1),
            status=SyncStatus.SUCCEEDED,
            api_calls=round(idle_calls),
            api_usage_max=org_limit,
        )
    after = effective_interval(now)
    steady_per_day = idle_calls * 86400 / after
    worst_latency = after + max(durations) + statistics.median(durations)
    print(
        f"day_with_daily_reconcile_at_1M: reconcile_calls {reconcile_calls:,}  "
        f"projected_calls_per_day {steady_per_day + reconcile_calls:,.0f} "
        f"({(steady_per_day + reconcile_calls) / org_limit:.1%} of the limit)"
    )
    print(
        f"hour_after_the_reconcile: interval {after:.1f} s  worst_change_to_visible {worst_latency:.1f} s "
        f"(target: within 2x the interval, {2 * max(after, interval):.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=float, default=5.0, help="SALESFORCE_SYNC_INTERVAL in seconds")
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()
    process, org = start_org()
    try:
        org.generate(opportunities=500, people=400)
        django_for(process, SALESFORCE_SYNC_INTERVAL=str(args.interval))
        from opportunities.sync.service import sync_cycle_run

        first = sync_cycle_run()
        assert first is not None and first.status == "succeeded", first and first.error_message
        counts, durations = [], []
        for _ in range(args.cycles):
            before = org.api_calls()
            cycle = sync_cycle_run()
            assert cycle is not None and cycle.status == "succeeded", cycle and cycle.error_message
            assert cycle.ended_at is not None
            counts.append(org.api_calls() - before)
            durations.append((cycle.ended_at - cycle.started_at).total_seconds())
        # A describe rides along in the same call about once a minute; count the worst cycle too.
        average = sum(counts) / len(counts)
        print(f"idle_cycle_api_calls: min {min(counts)} max {max(counts)} average {average:.2f} (target 1)")
        print(
            f"interval_seconds: {args.interval}  projected_calls_per_day: {average * 86400 / args.interval:,.0f}"
        )
        limits = org.stats()["api_usage"]
        print(
            f"org_daily_limit: {limits['max']:,}  share_of_limit: {average * 86400 / args.interval / limits['max']:.1%}"
        )
        day_with_a_reconcile(average, durations, limits["max"], args.interval)
    finally:
        process.stop()


if __name__ == "__main__":
    main()
