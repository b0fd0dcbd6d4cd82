"""Benchmark: change-to-visible latency. A stage change saved in the emulator, until it is
committed in OppSync's database (and so on every page and in the API), with a real Celery worker
and beat at SALESFORCE_SYNC_INTERVAL=2.

    .venv/bin/python -m bench.sync_latency [--changes 60] [--redis]

With `--cdc` (or `--compare`, both side by side) it runs bench/sync_stack.py instead: `make run`'s
processes with the change listener, visibility read through the REST API (issue P15's acceptance);
the other options are passed on.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time

from bench.common import django_for, percentile, start_org, start_worker


def main() -> None:
    if "--cdc" in sys.argv[1:] or "--compare" in sys.argv[1:]:
        from bench import sync_stack

        sync_stack.main()
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--redis", action="store_true", help="Redis broker instead of the file broker")
    parser.add_argument("--daily-limit", type=int, default=500_000, help="the org's DailyApiRequests Max")
    args = parser.parse_args()
    process, org = start_org()
    worker = None
    try:
        org.generate(opportunities=1000, people=800)
        # At one call every 2 s (43,200 a day) the default budget (25% of the limit) needs an org
        # whose daily limit is at least 172,800; a smaller one stretches the interval on purpose.
        org.faults(api_usage={"used": 0, "max": args.daily_limit})
        extra = {"SALESFORCE_SYNC_INTERVAL": str(args.interval)}
        if args.redis:
            extra["REDIS_URL"] = "redis://127.0.0.1:6379/13"
        var_dir = django_for(process, **extra)
        from opportunities.models import Opportunity, SyncState

        worker = start_worker(var_dir, queues="sync,default", concurrency=1)
        deadline = time.monotonic() + 180
        while SyncState.objects.filter(initial_load_completed_at__isnull=False).count() < 4:
            if time.monotonic() > deadline:
                raise SystemExit("the initial load did not finish")
            time.sleep(0.5)
        open_ids = list(Opportunity.live.filter(is_closed=False).values_list("sf_id", flat=True))
        rng = random.Random(7)
        stages = [
            "Qualification",
            "Needs Analysis",
            "Value Proposition",
            "Id. Decision Makers",
            "Perception Analysis",
        ]
        latencies = []
        for number in range(args.changes):
            sf_id = rng.choice(open_ids)
            stage = stages[number % len(stages)]
            if Opportunity.objects.filter(sf_id=sf_id, stage_name=stage).exists():
                stage = "Proposal/Price Quote"
            started = time.monotonic()
            org.update("Opportunity", {"Id": sf_id, "StageName": stage})
            while not Opportunity.objects.filter(sf_id=sf_id, stage_name=stage).exists():
                if time.monotonic() - started > 60:
                    raise SystemExit(f"change {number} never arrived")
                time.sleep(0.01)
            latencies.append(time.monotonic() - started)
            time.sleep(rng.random())  # land anywhere in the cycle
        from opportunities.sync.schedule import effective_interval

        print(
            f"changes: {len(latencies)}  interval_seconds: {args.interval}  effective_interval: {effective_interval():.2f}  "
            f"daily_limit: {args.daily_limit:,}  broker: {'redis' if args.redis else 'file'}"
        )
        print(
            f"latency_seconds: p50 {percentile(latencies, 0.5):.2f}  p95 {percentile(latencies, 0.95):.2f}  "
            f"max {max(latencies):.2f}  (target p95 < 5)"
        )
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        process.stop()


if __name__ == "__main__":
    main()
