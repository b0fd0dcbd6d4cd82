"""Create the demo administrator that `make run` prints, unless it exists."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from opportunities.salesforce.auth import SalesforceConfig


class Command(BaseCommand):
    help = (
        "Create the demo superuser admin/admin and print how to log in: only in demo mode (no Salesforce "
        "credentials), for `make run` with the bundled emulator."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="admin")
        # The port `make run`'s web process listens on (OPPSYNC_PORT), not always 8000.
        parser.add_argument(
            "--url", default=f"http://127.0.0.1:{os.environ.get('OPPSYNC_PORT', '8000')}/admin/"
        )

    def handle(self, *args: Any, username: str, password: str, url: str, **options: Any) -> None:
        if SalesforceConfig.from_settings().configured:
            # A real org's data: no account with a published password, ever.
            self.stdout.write(
                "Salesforce credentials are set, so no demo account is created. Create your own "
                "administrator with `.venv/bin/python manage.py createsuperuser`."
            )
            return
        user_model = get_user_model()
        if not user_model.objects.filter(username=username).exists():
            user_model.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(f"Created the demo administrator {username!r}.")
        self.stdout.write(self.style.SUCCESS(f"OppSync: open {url} and log in as {username} / {password}"))
