"""Benchmark: change in Salesforce → webhook received, through the whole product: the emulator,
the sync in a Celery worker (beat, SALESFORCE_SYNC_INTERVAL=2), trigger evaluation on the
`triggers` queue, delivery on `webhooks`, and a receiver in this process that checks each
signature. Then the throughput of delivering N queued webhooks to that receiver.

    .venv/bin/python -m bench.trigger_latency [--changes 60] [--deliveries 10000] [--broker redis|file]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import time
from collections.abc import Callable

from bench.common import django_for, percentile, start_org, start_worker

SECRET = "whsec_bench_secret_0123456789"  # noqa: S105  # the benchmark receiver's own


def _wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def _where_it_stopped(name: str) -> None:
    """What a lost change reached: the role, the activity, the decision, the attempts."""
    from campaigns.models import Delivery, TriggerCursor
    from opportunities.models import Activity, ContactRole, SyncCycle

    role = ContactRole.objects.filter(opportunity__name=name).first()
    activity = Activity.objects.filter(opportunity__name=name).first()
    delivery = Delivery.objects.filter(activity=activity).first() if activity else None
    print(f"role synced: {role is not None}  activity: {activity and (activity.pk, activity.recorded_at)}")
    print(f"cursor: {TriggerCursor.objects.values_list('last_activity_id', flat=True).first()}")
    print(
        f"delivery: {delivery and (delivery.status, delivery.attempt_count, list(delivery.attempts.values_list('error', flat=True)))}"
    )
    print(
        f"last cycles: {list(SyncCycle.objects.order_by('-pk').values_list('status', 'started_at', 'error_message')[:3])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--broker", choices=["redis", "file"], default="redis")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    process, org = start_org()
    worker = None
    try:
        org.generate(opportunities=300, people=300)
        org.faults(api_usage={"used": 0, "max": 500_000})
        extra = {
            "SALESFORCE_SYNC_INTERVAL": str(args.interval),
            "TRIGGERS_DISPATCH": "true",
            "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            # The sweep is the safety net; the hand-over and the deliver tasks do the work measured.
            "WEBHOOK_SWEEP_INTERVAL": "30",
        }
        if args.broker == "redis":
            import redis

            extra["REDIS_URL"] = "redis://127.0.0.1:6379/12"
            redis.Redis.from_url(extra["REDIS_URL"]).flushdb()
        var_dir = django_for(process, **extra)
        from campaigns.models import Campaign, Delivery, DeliveryStatus
        from campaigns.receiver import Receiver
        from campaigns.services import campaign_save
        from campaigns.tasks import deliver
        from opportunities.models import SyncState

        receiver = Receiver(secret=SECRET).start()
        worker = start_worker(var_dir, queues="sync,default,triggers,webhooks", concurrency=args.concurrency)
        _wait(
            lambda: SyncState.objects.filter(initial_load_completed_at__isnull=False).count() == 4,
            180,
            "the initial load",
        )
        campaign, _ = campaign_save(
            campaign=None,
            data={
                "name": "Bench",
                "triggers": [{"trigger": "added_to_opportunity"}],
                "webhook": {"url": receiver.url, "secret": SECRET},
            },
        )
        from people.models import Person

        # Contacts OppSync can see: the demo org hides some from the integration user (sharing),
        # and a role on a hidden contact records nothing, as in Salesforce.
        visible = Person.objects.filter(sf_contact_id__isnull=False, merged_into=None)
        contacts = sorted(str(c) for c in visible.values_list("sf_contact_id", flat=True))
        rng = random.Random(11)
        latencies = []
        for number in range(args.changes):
            name = f"bench deal {number}"
            [deal] = org.create(
                "Opportunity", {"Name": name, "StageName": "Prospecting", "CloseDate": "2031-01-01"}
            )
            started = time.monotonic()
            org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": rng.choice(contacts)})

            def arrived(name: str = name) -> bool:
                return any(
                    (r.body.get("opportunity") or {}).get("name") == name for r in receiver.unique().values()
                )

            try:
                _wait(arrived, 60, f"the webhook of change {number}")
            except SystemExit:
                _where_it_stopped(name)
                raise
            latencies.append(time.monotonic() - started)
            time.sleep(rng.random())  # land anywhere in the cycle
        assert all(r.verified for r in receiver.received)
        print(
            f"changes: {len(latencies)}  interval_seconds: {args.interval}  broker: {args.broker}  "
            f"worker_concurrency: {args.concurrency}"
        )
        print(
            f"change_to_webhook_seconds: p50 {percentile(latencies, 0.5):.2f}  p95 {percentile(latencies, 0.95):.2f}  "
            f"max {max(latencies):.2f}  (target p95 < 5; Marketo: a five-minute cycle)"
        )

        # Throughput: N deliveries decided at once (as after a mass update), then delivered.
        Campaign.objects.filter(pk=campaign.pk).update(is_active=False)
        sample = Delivery.objects.filter(campaign=campaign).first()
        assert sample is not None
        before = len(receiver.received)
        Delivery.objects.bulk_create(
            [
                Delivery(campaign=campaign, payload=sample.payload, person_id=sample.person_id)
                for _ in range(args.deliveries)
            ],
            batch_size=1000,
        )
        queued = list(Delivery.objects.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True))
        started = time.monotonic()
        for delivery_id in queued:
            deliver.apply_async((delivery_id,))
        enqueued = time.monotonic() - started
        _wait(
            lambda: not Delivery.objects.filter(status=DeliveryStatus.PENDING).exists(),
            1800,
            "every queued delivery",
        )
        elapsed = time.monotonic() - started
        failed = Delivery.objects.filter(status=DeliveryStatus.FAILED).count()
        print(
            f"deliveries: {len(queued):,} in {elapsed:.1f} s = {len(queued) / elapsed:.0f}/s "
            f"(queueing took {enqueued:.1f} s; failed {failed}; received {len(receiver.received) - before:,})"
        )
        receiver.stop()
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        process.stop()


if __name__ == "__main__":
    main()
