"""`python manage.py webhook_receiver --port 8025`: a local receiver for trigger-campaign webhooks
(the demo starts one). Prints each delivery; verifies signatures when given the secret."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from campaigns.receiver import Receiver


class Command(BaseCommand):
    help = "Receive OppSync webhooks on a local port and print them (for the demo and trials)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8025)
        parser.add_argument(
            "--secret-env",
            default="DEMO_WEBHOOK_SECRET",
            help="environment variable holding the campaign secret to verify signatures with",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("campaigns.receiver").setLevel(logging.INFO)
        receiver = Receiver(
            secret=os.environ.get(options["secret_env"]) or None, host=options["host"], port=options["port"]
        )
        receiver.start()
        self.stdout.write(f"Receiving webhooks at {receiver.url}")
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        stopped.wait()
        receiver.stop()
