"""The sync in real Celery worker processes (beat-driven), on Redis and on the file broker,
including a worker killed with SIGKILL in the middle of a cycle."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import redis
from django.utils import timezone

from opportunities.models import Activity, Opportunity, SyncCycle, SyncStatus
from opportunities.sync import service
from opportunities.sync.service import sync_cycle_run
from tests.integration.sync.checks import assert_database_equals_org, wait_for_stopped_workers_lease
from tests.integration.sync.conftest import salesforce_environment
from tests.processes import process_env, redis_test_url, stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REDIS_TEST_URL = redis_test_url("workers")


def worker_env(org, tmp_path, broker: str, **extra: str) -> dict[str, str]:
    if broker == "redis":
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    return process_env(
        OPPSYNC_VAR_DIR=str(tmp_path / "var"),
        REDIS_URL=REDIS_TEST_URL if broker == "redis" else "",
        SALESFORCE_SYNC_INTERVAL="1",
        SALESFORCE_RETRY_BACKOFF="0.05",
        SALESFORCE_SYNC_LOCK_SECONDS="5",
        CELERY_HEARTBEAT_INTERVAL="30",
        **salesforce_environment(org),
        **extra,
    )


def start_worker(env: dict[str, str], log, queues: str = "sync,default") -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [
            "celery",
            "-A",
            "oppsync_site",
            "worker",
            "--beat",
            "--queues",
            queues,
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--schedule",
            env["OPPSYNC_VAR_DIR"] + "/beat-schedule",
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finish_in_test_process(org, synced_settings) -> None:
    """With the worker stopped: one plain cycle here and a comparison *before* any reconcile (so
    a lost row cannot hide behind it); then a reconciling cycle and the full comparison."""
    service._clients.clear()
    wait_for_stopped_workers_lease()
    for reconcile in (False, True):
        cycle = sync_cycle_run(reconcile=reconcile)
        assert cycle is not None and cycle.status == SyncStatus.SUCCEEDED, cycle and cycle.error_message
        assert_database_equals_org(org, before_getdeleted=not reconcile)


@pytest.mark.parametrize("broker", ["file", "redis"])
def test_a_worker_syncs_the_org_and_its_changes(org, synced_settings, tmp_path, broker):
    org.generate(opportunities=150, people=120, seed=21)
    log = tmp_path / "worker.log"
    worker = start_worker(worker_env(org, tmp_path, broker), log)
    try:
        wait_until(
            lambda: Opportunity.objects.count() == 150,
            timeout=90,
            what="the initial load by the worker",
            log=log,
        )
        [contact] = org.create("Contact", {"FirstName": "Field", "LastName": "Rep"})
        [deal] = org.create(
            "Opportunity",
            {"Name": "Fresh from the field", "StageName": "Qualification", "CloseDate": "2031-03-01"},
        )
        org.create(
            "OpportunityContactRole",
            {"OpportunityId": deal, "ContactId": contact, "Role": "Economic Buyer", "IsPrimary": True},
        )
        wait_until(
            lambda: Activity.objects.filter(opportunity__sf_id=deal).exists(),
            timeout=90,
            what="a new deal with its buyer",
            log=log,
        )
        org.update("Opportunity", {"Id": deal, "StageName": "Closed Won"})
        changed_at = timezone.now()
        wait_until(
            lambda: Opportunity.objects.filter(sf_id=deal, stage_name="Closed Won").exists(),
            timeout=90,
            what="a stage change",
            log=log,
        )
        # The condition, not a count of cycles (one may still be running): a cycle that started
        # after the last change in the org has finished, so everything the org holds was read.
        wait_until(
            lambda: SyncCycle.objects.filter(status=SyncStatus.SUCCEEDED, started_at__gt=changed_at).exists(),
            timeout=90,
            what="a cycle that started after the last change",
            log=log,
        )
    finally:
        stop(worker)
    assert_database_equals_org(org)  # what the worker wrote, before anything else runs
    new = Activity.objects.filter(opportunity__sf_id=deal, is_initial_load=False)
    added = new.get(activity_type="added_to_opportunity")
    assert (added.person.sf_contact_id, added.role, added.is_primary) == (contact, "Economic Buyer", True)
    stage = new.get(activity_type="opportunity_updated", field="StageName")
    assert (stage.previous_value, stage.new_value) == ("Qualification", "Closed Won")
    changed_fields = set(new.filter(activity_type="opportunity_updated").values_list("field", flat=True))
    assert changed_fields == {
        "StageName",
        "IsClosed",
        "IsWon",
        "Probability",
        "ForecastCategory",
        "ForecastCategoryName",
        "LastStageChangeDate",
    }
    finish_in_test_process(org, synced_settings)


@pytest.mark.parametrize("broker", ["file", "redis"])
def test_a_worker_killed_mid_cycle_loses_nothing_and_duplicates_nothing(
    org, synced_settings, tmp_path, broker
):
    org.generate(opportunities=1500, people=600, seed=22)
    org.faults(page_size=50, slow={"seconds": 0.05, "times": 100_000})  # a long initial load
    log = tmp_path / "worker.log"
    env = worker_env(org, tmp_path, broker)
    worker = start_worker(env, log)
    try:
        wait_until(
            lambda: 100 < Opportunity.objects.count() < 1400, timeout=120, what="a cycle half-way", log=log
        )
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        assert SyncCycle.objects.filter(status=SyncStatus.RUNNING).exists()
        org.sales_team_act(times=30)
        org.clear_faults()
        worker = start_worker(env, log)
        wait_until(
            lambda: SyncCycle.objects.filter(status=SyncStatus.SUCCEEDED).count() >= 2,
            timeout=120,
            what="cycles after the restart",
            log=log,
        )
    finally:
        stop(worker)
    abandoned = SyncCycle.objects.filter(status=SyncStatus.FAILED, error_message__startswith="Abandoned")
    assert abandoned.exists()
    finish_in_test_process(org, synced_settings)
    keys = list(
        Activity.objects.values_list(
            "activity_type", "person_id", "opportunity_id", "field", "sf_contact_role_id", "occurred_at"
        )
    )
    assert len(keys) == len(set(keys)), "an activity was recorded twice"
