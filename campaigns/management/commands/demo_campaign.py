"""Create the demo's trigger campaign (once): `make run` without Salesforce credentials posts its
webhooks to the local receiver it starts, so a newcomer sees deliveries arrive."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.test import override_settings

from campaigns.models import Campaign
from campaigns.services import campaign_save

DEMO_NAME = "Demo: deal changes to the local receiver"


class Command(BaseCommand):
    help = "Create the demo trigger campaign posting to the local demo receiver, unless it exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True)
        parser.add_argument("--secret", required=True)

    def handle(self, *args: Any, url: str, secret: str, **options: Any) -> None:
        if Campaign.objects.filter(name=DEMO_NAME).exists():
            return
        with override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=True):  # the receiver is on this machine
            campaign, _ = campaign_save(
                campaign=None,
                data={
                    "name": DEMO_NAME,
                    "description": "Created by `make run`: people added to or removed from deals, posted to the demo receiver.",
                    # Triggers without field constraints: the demo creates this before the first
                    # describe, when no Opportunity field is in the catalog yet.
                    "triggers": [
                        {"trigger": "added_to_opportunity"},
                        {"trigger": "removed_from_opportunity"},
                    ],
                    "webhook": {"url": url, "secret": secret},
                },
            )
        self.stdout.write(f"Created the demo campaign {campaign.name!r}: its webhooks go to {url}.")
