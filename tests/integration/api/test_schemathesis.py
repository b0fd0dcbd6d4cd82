"""Schemathesis against the live API (`/api/schema/`), authenticated, with synced data loaded:
no 500, and no response that violates the schema."""

from __future__ import annotations

import subprocess

import pytest
import requests

from tests.processes import free_port, process_env, running, wait_until

pytestmark = pytest.mark.integration
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


# The viewer's run checks what a read-only token is answered (the 403s and their shape); the
# queries behind its reads are the administrator's, which runs on both databases. So the viewer
# runs in one pass only (P13).
@pytest.mark.parametrize(
    "role", ["administrator", pytest.param("viewer", marks=pytest.mark.sqlite_pass_only)]
)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(synced_data, tmp_path, role):
    port = free_port()
    env = process_env(
        OPPSYNC_VAR_DIR=str(tmp_path / "var"), API_THROTTLE_USER="100000/minute", DJANGO_DEBUG="false"
    )
    log = tmp_path / "web.log"
    base = f"http://127.0.0.1:{port}"
    with running(["python", "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], env=env, log=log):
        wait_until(lambda: _up(f"{base}/api/schema/"), timeout=60, what="the web server", log=log)
        result = subprocess.run(
            [
                "schemathesis",
                "run",
                f"{base}/api/schema/",
                "--header",
                f"Authorization: Token {synced_data['tokens'][role]}",
                "--checks",
                CHECKS,
                "--max-examples",
                "15",
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--seed",
                "1",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:] + "\n--- server log ---\n" + log.read_text()[-3000:]
    assert "passed" in output.lower()
