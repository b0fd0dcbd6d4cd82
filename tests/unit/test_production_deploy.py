"""P9: the documented production environment passes `check --deploy`, and static files are
served under production settings (DEBUG off) once the documented start command collected them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.processes import REPO

# The README's deployment section sets exactly these (plus the database, Redis and Salesforce).
DEPLOY_ENV = {
    "DJANGO_SETTINGS_MODULE": "oppsync_site.settings.production",
    "DJANGO_SECRET_KEY": "a-long-random-value-for-this-test-only-0123456789-abcdefghij",
    "DJANGO_ALLOWED_HOSTS": "oppsync.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://oppsync.example.com",
}


def _run(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SALESFORCE_", "DATABASE_URL"))
    }
    env = {**clean, **DEPLOY_ENV, "OPPSYNC_VAR_DIR": str(tmp_path / "var"), **extra}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_check_deploy_is_clean_with_the_documented_environment(tmp_path):
    result = _run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_static_files_and_the_docs_are_served_in_production_after_the_start_command(tmp_path):
    database = f"sqlite:///{tmp_path / 'prod.sqlite3'}"
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--verbosity", "0"]):
        step = _run([sys.executable, "manage.py", *command], tmp_path, DATABASE_URL=database)
        assert step.returncode == 0, step.stderr
    probe = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='oppsync.example.com')\n"
        "for url in ('/admin/login/', '/static/admin/css/base.css', '/api/docs/', '/static/oppsync/oppsync.css'):\n"
        "    r = c.get(url, secure=True)\n"
        "    print(url, r.status_code)\n"
        "print('http', c.get('/admin/login/').status_code)\n"
    )
    result = _run([sys.executable, "-c", probe], tmp_path, DATABASE_URL=database)
    assert result.returncode == 0, result.stderr
    lines = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    assert lines["/admin/login/"] == "200" and lines["/static/admin/css/base.css"] == "200"
    assert lines["/api/docs/"] in ("200", "401", "403") and lines["/static/oppsync/oppsync.css"] == "200"
    assert lines["http"] == "301"  # plain HTTP is sent to HTTPS
