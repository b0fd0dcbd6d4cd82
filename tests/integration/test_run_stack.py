"""`make run`'s processes (`manage.py run_stack`, honcho): with no Salesforce credentials the
bundled emulator runs with a demo org and the sync fills the database; the admin logs in while a
worker and beat run and the beat-scheduled heartbeat executes; on the file broker and on Redis."""

from __future__ import annotations

import re
import signal

import pytest
import redis
import requests
from django.contrib.auth.models import User

from campaigns.management.commands.demo_campaign import DEMO_NAME
from campaigns.models import Delivery, DeliveryStatus
from opportunities.models import Opportunity
from oppsync_site.models import WorkerHeartbeat
from tests.processes import free_port, process_env, redis_test_url, running, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _admin_login(base: str) -> str:
    session = requests.Session()
    login_url = f"{base}/admin/login/"
    page = session.get(login_url, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    response = session.post(
        login_url,
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": "demo",
            "password": "demo-pass",
            "next": "/admin/",
        },
        headers={"Referer": login_url},
        timeout=10,
    )
    response.raise_for_status()
    return response.text


def _web_is_up(base: str) -> bool:
    try:
        return requests.get(f"{base}/admin/login/", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.mark.parametrize("broker", ["file", "redis"])
def test_the_stack_serves_the_admin_while_worker_and_beat_run(tmp_path, broker):
    User.objects.create_superuser(username="demo", password="demo-pass", email="")
    port = free_port()
    env = process_env(
        OPPSYNC_VAR_DIR=str(tmp_path / "var"),
        OPPSYNC_PORT=str(port),
        EMULATOR_PORT=str(free_port()),
        EMULATOR_PUBSUB_PORT=str(free_port()),
        DEMO_WEBHOOK_PORT=str(free_port()),
        DEMO_OPPORTUNITIES="300",
        DEMO_PEOPLE="400",
        CELERY_HEARTBEAT_INTERVAL="1",
        SALESFORCE_SYNC_INTERVAL="1",
        REDIS_URL=redis_test_url("stack") if broker == "redis" else "",
        SALESFORCE_CLIENT_ID="",
        SALESFORCE_CLIENT_SECRET="",
    )
    if broker == "redis":
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    log = tmp_path / "honcho.log"
    base = f"http://127.0.0.1:{port}"

    with running(["python", "manage.py", "run_stack"], env=env, log=log) as stack:
        wait_until(lambda: _web_is_up(base), timeout=60, what="the web process", log=log)
        home = _admin_login(base)
        assert "Salesforce opportunities for marketing" in home
        assert "Log out" in home

        beats = wait_until(
            lambda: WorkerHeartbeat.objects.filter(beats__gte=2).first(),
            timeout=90,
            what="two heartbeats run by the worker",
            log=log,
        )
        wait_until(
            lambda: Opportunity.objects.count() >= 300,
            timeout=120,
            what="the demo org synced from the bundled emulator",
            log=log,
        )
        # The demo campaign posts the sales team's changes to the receiver the stack started.
        wait_until(
            lambda: Delivery.objects.filter(
                campaign__name=DEMO_NAME, status=DeliveryStatus.SUCCEEDED
            ).exists(),
            timeout=120,
            what="a webhook delivered to the demo receiver",
            log=log,
        )
        stack.send_signal(signal.SIGINT)  # Ctrl-C
        stack.wait(timeout=90)
    assert beats.beats >= 2
    text = log.read_text()
    # Every process stopped by itself: no ERROR line, nothing honcho had to kill.
    assert "ERROR" not in text and "SIGKILL" not in text, text[-3000:]
    assert "Traceback" not in log.read_text()  # no process crashed on the way (the file broker's old race)
