"""The README's examples run against the demo stack (`make run`'s processes: the bundled emulator
with its demo org, web, worker, beat): every `curl` of the README that talks to the application or
the emulator runs as written, in the README's order, so an example that stops working fails the
suite (P13 point 6)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests
from django.contrib.auth.models import User

from opportunities.models import FieldDefinition, Opportunity
from people.models import Person
from tests.processes import REPO, free_port, process_env, running, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

APP = "http://127.0.0.1:8000"
EMULATOR = "https://localhost:8443"
DEMO_OPPORTUNITIES = 300
# The ids the README's examples name, as a fresh install numbers its rows.
README_PERSON_ID, README_OPPORTUNITY_ID, README_SMART_LIST_ID = 42, 7, 1


def readme_commands() -> list[str]:
    """The README's `curl` commands to the app or the emulator, as bash reads them: a line ending
    in a backslash or inside an open single-quoted string (JSON over several lines) continues."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S):
        command = ""
        for line in block.splitlines():
            command += line
            if command.endswith("\\"):
                command = command[:-1]
                continue
            if command.count("'") % 2:
                command += "\n"
                continue
            if command.startswith("curl ") and (APP in command or EMULATOR in command):
                commands.append(command)
            command = ""
    return commands


def _web_is_up(base: str) -> bool:
    try:
        return requests.get(f"{base}/admin/login/", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _run(command: str, *, token: str, cwd) -> subprocess.CompletedProcess[str]:
    # -sS: no progress meter, but errors; --fail-with-body: a 4xx/5xx is a failed example.
    command = command.replace("curl ", "curl -sS --fail-with-body ", 1)
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        env={"PATH": "/usr/bin:/bin", "TOKEN": token},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_readme_commands_are_found():
    commands = readme_commands()
    assert len(commands) >= 15, commands
    assert any("/api/v1/smart-lists/" in c and "-X POST" in c for c in commands)
    assert any("/__emulator__/fields" in c for c in commands)


def test_every_readme_example_works_on_the_demo_org(tmp_path):
    User.objects.create_superuser(username="admin", password="admin", email="")
    port, emulator_port = free_port(), free_port()
    var = tmp_path / "var"
    env = process_env(
        OPPSYNC_VAR_DIR=str(var),
        OPPSYNC_PORT=str(port),
        EMULATOR_PORT=str(emulator_port),
        EMULATOR_PUBSUB_PORT=str(free_port()),
        DEMO_WEBHOOK_PORT=str(free_port()),
        DEMO_OPPORTUNITIES=str(DEMO_OPPORTUNITIES),
        DEMO_PEOPLE="400",
        SALESFORCE_SYNC_INTERVAL="1",
        REDIS_URL="",
        SALESFORCE_CLIENT_ID="",
        SALESFORCE_CLIENT_SECRET="",
    )
    log = tmp_path / "honcho.log"
    base = f"http://127.0.0.1:{port}"
    with running([sys.executable, "manage.py", "run_stack"], env=env, log=log):
        wait_until(lambda: _web_is_up(base), timeout=90, what="the web process", log=log)
        wait_until(
            lambda: (
                Opportunity.objects.count() >= DEMO_OPPORTUNITIES
                and FieldDefinition.objects.filter(sobject="Opportunity", api_name="Region__c").exists()
            ),
            timeout=180,
            what="the demo org with its custom fields synced",
            log=log,
        )
        created = subprocess.run(
            [sys.executable, "manage.py", "drf_create_token", "admin"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = re.search(r"[0-9a-f]{40}", created.stdout)
        assert token, created.stdout
        person_id = Person.objects.order_by("pk").values_list("pk", flat=True)[README_PERSON_ID - 1]
        opportunity_id = Opportunity.objects.order_by("pk").values_list("pk", flat=True)[
            README_OPPORTUNITY_ID - 1
        ]
        smart_list_id = None
        ca = str(var / "emulator" / "ca.pem")
        for command in readme_commands():
            command = re.sub(r"--cacert \S+", f"--cacert {ca}", command)
            command = (
                command.replace(APP, base)
                .replace(EMULATOR, f"https://localhost:{emulator_port}")
                .replace(f"/persons/{README_PERSON_ID}/", f"/persons/{person_id}/")
                .replace(f"opportunity={README_OPPORTUNITY_ID}", f"opportunity={opportunity_id}")
            )
            if smart_list_id is not None:
                command = command.replace(
                    f"/smart-lists/{README_SMART_LIST_ID}/", f"/smart-lists/{smart_list_id}/"
                )
            if "| grep" in command:
                # Waits for something the sync brings (a field by the next cycle's describe).
                wait_until(
                    lambda command=command: _run(command, token=token.group(0), cwd=tmp_path).returncode == 0,
                    timeout=90,
                    what=f"the README example {command!r}",
                    log=log,
                )
                continue
            result = _run(command, token=token.group(0), cwd=tmp_path)
            assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            if " -o " in command:
                assert (tmp_path / "members.csv").read_text().startswith("email,first_name,company")
                continue
            body = json.loads(result.stdout)
            if "/api/v1/smart-lists/" in command and "-X POST" in command and "/preview/" not in command:
                smart_list_id = body["id"]
            if "/members/" in command:
                assert body["count"] > 0, f"the README's example list has no member on the demo org: {body}"
    assert smart_list_id is not None
