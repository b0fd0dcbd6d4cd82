"""P9: the production topology as separate processes on this machine: gunicorn, a `sync` worker,
a `triggers`/`webhooks` worker and exactly one beat, on PostgreSQL and Redis, against the
emulator. Every change shows once (in the database, through the web process's API, and as one
webhook), and sync cycles never overlap."""

from __future__ import annotations

import itertools

import pytest
import redis
import requests
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authtoken.models import Token

from campaigns.models import Delivery, DeliveryStatus
from campaigns.receiver import Receiver
from campaigns.services import campaign_save
from opportunities.models import Activity, ActivityType, Opportunity, SyncCycle, SyncStatus
from tests.integration.sync.conftest import salesforce_environment
from tests.processes import free_port, process_env, redis_test_url, running, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REDIS = redis_test_url("topology")
SECRET = "whsec_topology_test_secret_01"


def _stage_through_api(base: str, token: str, sf_id: str) -> str | None:
    """The opportunity's stage as the web process's API shows it (None until it is there)."""
    try:
        response = requests.get(
            f"{base}/api/v1/opportunities/",
            {"sf_id": sf_id},
            headers={"Authorization": f"Token {token}"},
            timeout=5,
        )
    except requests.ConnectionError:
        return None
    results = response.json().get("results") if response.status_code == 200 else None
    return results[0]["stage"] if results else None


def test_web_two_workers_and_one_beat_show_every_change_once(org, synced_settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the many-machine topology is PostgreSQL and Redis; it runs in the PostgreSQL pass")
    redis.Redis.from_url(REDIS).flushdb()
    org.generate(opportunities=60, people=50, seed=61)
    user = User.objects.create_superuser(username="ops", password="pw", email="")
    token = Token.objects.create(user=user).key
    receiver = Receiver(secret=SECRET).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_env(
        OPPSYNC_VAR_DIR=str(tmp_path / "var"),
        REDIS_URL=REDIS,
        SALESFORCE_SYNC_INTERVAL="1",
        SALESFORCE_SYNC_LOCK_SECONDS="10",
        TRIGGERS_DISPATCH="true",
        WEBHOOK_SWEEP_INTERVAL="2",
        **salesforce_environment(org),
    )
    celery = ["celery", "-A", "oppsync_site"]
    processes = {
        "web": ["gunicorn", "oppsync_site.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        "sync": [*celery, "worker", "--queues", "sync,default", "--concurrency", "2", "-n", "sync@%h"],
        "hooks": [*celery, "worker", "--queues", "triggers,webhooks", "--concurrency", "2", "-n", "hooks@%h"],
        "beat": [*celery, "beat", "--schedule", str(tmp_path / "beat-schedule")],
    }
    with (
        running(processes["web"], env=env, log=tmp_path / "web.log"),
        running(processes["sync"], env=env, log=tmp_path / "sync.log"),
        running(processes["hooks"], env=env, log=tmp_path / "hooks.log"),
        running(processes["beat"], env=env, log=tmp_path / "beat.log"),
    ):
        wait_until(
            lambda: Opportunity.objects.count() == 60,
            timeout=120,
            what="the initial load",
            log=tmp_path / "sync.log",
        )
        campaign_save(
            campaign=None,
            data={
                "name": "Topology",
                "triggers": [{"trigger": "added_to_opportunity"}],
                "webhook": {"url": receiver.url, "secret": SECRET},
            },
        )
        contacts = org.create("Contact", *({"LastName": f"Buyer {n}"} for n in range(5)))
        deals = org.create(
            "Opportunity",
            *(
                {"Name": f"Topology deal {n}", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
                for n in range(5)
            ),
        )
        org.create(
            "OpportunityContactRole",
            *({"OpportunityId": d, "ContactId": c} for d, c in zip(deals, contacts, strict=True)),
        )
        wait_until(  # seen as created first; otherwise the stage below is simply how they arrive
            lambda: Activity.objects.filter(opportunity__sf_id__in=deals).count() == 5,
            timeout=120,
            what="the new deals and their people",
            log=tmp_path / "sync.log",
        )
        for deal in deals:
            org.update("Opportunity", {"Id": deal, "StageName": "Negotiation/Review"})
        for deal in deals:  # visible through the web process's API
            wait_until(
                lambda deal=deal: _stage_through_api(base, token, deal) == "Negotiation/Review",
                timeout=120,
                what=f"{deal} through the API",
                log=tmp_path / "sync.log",
            )
        wait_until(
            lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 5,
            timeout=120,
            what="five webhooks",
            log=tmp_path / "hooks.log",
        )
    receiver.stop()
    for deal in deals:
        new = Activity.objects.filter(opportunity__sf_id=deal)
        assert new.filter(activity_type=ActivityType.ADDED_TO_OPPORTUNITY).count() == 1
        assert new.filter(activity_type=ActivityType.OPPORTUNITY_UPDATED, field="StageName").count() == 1
    assert Delivery.objects.count() == 5 and len(receiver.unique()) == 5
    assert all(r.verified for r in receiver.received)
    cycles = list(
        SyncCycle.objects.exclude(ended_at=None)
        .order_by("started_at")
        .values_list("started_at", "ended_at", "status")
    )
    assert len(cycles) >= 3 and all(status != SyncStatus.RUNNING for _, _, status in cycles)
    for (_, ended, _), (started, _, _) in itertools.pairwise(cycles):
        assert started >= ended, "two sync cycles overlapped"
