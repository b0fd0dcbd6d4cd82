"""P9: production starts right or not at all."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from tests.processes import REPO


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SALESFORCE_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("module", ["oppsync_site.wsgi", "oppsync_site.asgi", "oppsync_site.celery"])
def test_entry_points_other_than_manage_py_never_fall_back_to_development_settings(module):
    result = _python(f"import {module}")
    assert result.returncode != 0
    assert (
        "DJANGO_SETTINGS_MODULE is not set" in result.stderr
        and "oppsync_site.settings.production" in result.stderr
    )


def test_an_empty_secret_key_is_refused_like_a_missing_one():
    code = "import django; django.setup()"
    for key in ("", "   "):
        result = _python(
            code, DJANGO_SETTINGS_MODULE="oppsync_site.settings.production", DJANGO_SECRET_KEY=key
        )
        assert result.returncode != 0 and "DJANGO_SECRET_KEY is empty" in result.stderr
    missing = _python(code, DJANGO_SETTINGS_MODULE="oppsync_site.settings.production")
    assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr


def test_the_wsgi_application_loads_when_told_its_settings():
    result = _python(
        "import oppsync_site.wsgi as w; print(type(w.application).__name__)",
        DJANGO_SETTINGS_MODULE="oppsync_site.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-key-for-this-test-only",
        DJANGO_ALLOWED_HOSTS="oppsync.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "WSGIHandler" in result.stdout


@pytest.mark.django_db
def test_the_demo_admin_is_created_only_in_demo_mode(settings, capsys):
    settings.SALESFORCE_CLIENT_ID = "a-real-connected-app"
    settings.SALESFORCE_CLIENT_SECRET = "its-secret"
    call_command("demo_admin")
    assert not User.objects.filter(username="admin").exists()
    assert "no demo account is created" in capsys.readouterr().out
    settings.SALESFORCE_CLIENT_ID = ""
    settings.SALESFORCE_CLIENT_SECRET = ""
    call_command("demo_admin")
    assert User.objects.get(username="admin").is_superuser


def test_the_real_credentials_procfile_runs_gunicorn_not_the_development_server():
    web = next(line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert "gunicorn oppsync_site.wsgi" in web and "runserver" not in web and "collectstatic" in web
