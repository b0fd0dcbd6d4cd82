"""Shared set-up for the benchmarks: a Django environment of its own and an emulated org."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from salesforce_emulator.control import EmulatorControl, EmulatorProcess


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_org(data_dir: Path | None = None) -> tuple[EmulatorProcess, EmulatorControl]:
    process = EmulatorProcess(data_dir or Path(tempfile.mkdtemp(prefix="oppsync-bench-org-")), free_port())
    return process, process.start()


def django_for(process: EmulatorProcess, *, database_url: str | None = None, **extra: str) -> Path:
    """Configure and set up Django against the emulator, in a fresh var folder and database."""
    var_dir = Path(tempfile.mkdtemp(prefix="oppsync-bench-var-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "oppsync_site.settings.local",
            "OPPSYNC_VAR_DIR": str(var_dir),
            "SALESFORCE_LOGIN_URL": process.instance_url,
            "SALESFORCE_CLIENT_ID": "oppsync-demo-client",
            "SALESFORCE_CLIENT_SECRET": "oppsync-demo-secret",
            "SALESFORCE_CA_BUNDLE": str(process.ca_file),
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    if database_url and database_url.startswith("postgres"):
        _recreate_postgres_database(database_url)
    call_command("migrate", verbosity=0)
    return var_dir


def start_worker(var_dir: Path, *, queues: str, concurrency: int) -> subprocess.Popen[bytes]:
    """A Celery worker with beat, in its own process group, for the environment django_for set."""
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "celery"), "-A", "oppsync_site", "worker", "--beat", "--queues", queues]
    command += [
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
        "--schedule",
        str(var_dir / "beat-schedule"),
    ]
    return subprocess.Popen(
        command, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, start_new_session=True
    )


def _recreate_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]
