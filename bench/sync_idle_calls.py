"""Benchmark: the Salesforce API calls of an idle sync cycle, counted by the emulator, and the
calls a day that makes at the configured interval.

    .venv/bin/python -m bench.sync_idle_calls [--interval 5]
"""

from __future__ import annotations

import argparse

from bench.common import django_for, start_org


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
        counts = []
        for _ in range(args.cycles):
            before = org.api_calls()
            cycle = sync_cycle_run()
            assert cycle is not None and cycle.status == "succeeded", cycle and cycle.error_message
            counts.append(org.api_calls() - before)
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
    finally:
        process.stop()


if __name__ == "__main__":
    main()
