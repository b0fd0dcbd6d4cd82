"""Start the application's processes with honcho (what `make run` ends with).

With Salesforce credentials configured it runs the `Procfile` (web, worker, beat, the change-event
listener) against that org. Without them it runs `Procfile.demo`, which adds the bundled Salesforce emulator with a demo
org and its sales team, and points the sync at it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from opportunities.salesforce.auth import SalesforceConfig

DEMO_CLIENT_ID = "oppsync-demo-client"
DEMO_CLIENT_SECRET = "oppsync-demo-secret"  # noqa: S105  # the bundled emulator's own demo credentials
DEMO_WEBHOOK_SECRET = "whsec_oppsync_demo_receiver"  # noqa: S105  # the local demo receiver's, not a real one


class Command(BaseCommand):
    help = "Run web, Celery worker and beat (and, without Salesforce credentials, the emulator)."

    def handle(self, *args: Any, **options: Any) -> None:
        env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("OPPSYNC_VAR_DIR", str(settings.VAR_DIR))
        procfile = "Procfile"
        if not SalesforceConfig.from_settings().configured:
            port = env.setdefault("EMULATOR_PORT", "8443")
            # Procfile.demo serves the emulator's Pub/Sub API (Change Data Capture) on this port.
            pubsub_port = env.setdefault("EMULATOR_PUBSUB_PORT", "7443")
            env.update(
                {
                    "SALESFORCE_LOGIN_URL": f"https://localhost:{port}",
                    "SALESFORCE_PUBSUB_URL": f"localhost:{pubsub_port}",
                    "SALESFORCE_CLIENT_ID": DEMO_CLIENT_ID,
                    "SALESFORCE_CLIENT_SECRET": DEMO_CLIENT_SECRET,
                    "SALESFORCE_CA_BUNDLE": str(Path(env["OPPSYNC_VAR_DIR"]) / "emulator" / "ca.pem"),
                }
            )
            procfile = "Procfile.demo"
            # The demo campaign posts to the receiver Procfile.demo starts on this machine.
            receiver_port = env.setdefault("DEMO_WEBHOOK_PORT", "8025")
            env.setdefault("DEMO_WEBHOOK_SECRET", DEMO_WEBHOOK_SECRET)
            env["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "true"
            call_command(
                "demo_campaign",
                url=f"http://127.0.0.1:{receiver_port}/hooks/oppsync",
                secret=env["DEMO_WEBHOOK_SECRET"],
            )
            self.stdout.write(
                "No Salesforce credentials are set: starting the bundled Salesforce emulator with a demo org "
                f"at https://localhost:{port}; its sales team keeps changing deals."
            )
        honcho = shutil.which("honcho", path=env["PATH"])
        if honcho is None:
            raise CommandError("honcho is not installed; run `make run`, which installs it.")
        os.chdir(settings.BASE_DIR)
        # honcho, through oppsync_site/stack.py: it waits long enough for a clean stop on Ctrl-C.
        os.execve(  # noqa: S606  # replaces this process
            sys.executable, [sys.executable, "-m", "oppsync_site.stack", "start", "-f", procfile], env
        )
