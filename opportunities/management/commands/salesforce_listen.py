"""`manage.py salesforce_listen [--in-process]`: the change-event listener (contract §2, issue P15).

A long-running process: it subscribes to the Pub/Sub API's change events and wakes the sync,
which stays the only writer. With SALESFORCE_CDC=off, or without Salesforce credentials, it says
so and idles until stopped (a process manager such as honcho stops every process when one exits).
SIGTERM or Ctrl-C stops it cleanly."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from opportunities.sync.listener import InProcessCycles, Listener, queue_wake
from opportunities.sync.service import sync_configured


class Command(BaseCommand):
    help = "Listen for Salesforce change events (Pub/Sub API) and wake the sync when something changed."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--in-process",
            action="store_true",
            help="run the woken cycles in this process instead of queueing them for a Celery worker",
        )

    def handle(self, *args: Any, in_process: bool, **options: Any) -> None:
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if settings.SALESFORCE_CDC == "off":
            self._idle(
                stop,
                "SALESFORCE_CDC is off: no change events; the sync polls every SALESFORCE_SYNC_INTERVAL.",
            )
            return
        if not sync_configured():
            self._idle(
                stop, "No Salesforce credentials are configured, so there is no change stream to listen to."
            )
            return
        cycles = InProcessCycles(stop) if in_process else None
        listener = Listener(
            stop=stop, say=self._say, dispatch=cycles.dispatch if cycles is not None else queue_wake
        )
        listener.run()
        if cycles is not None:
            cycles.join()
        self._say("The change listener stopped.")

    def _say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def _idle(self, stop: threading.Event, message: str) -> None:
        self._say(f"{message} This process idles until it is stopped.")
        stop.wait()
