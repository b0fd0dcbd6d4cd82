"""The Pub/Sub suites' client: the second, independent one of pubsub_client.py, on the session's
emulator, which is put back as it was after each test (keepalive period, selection, retention,
delivery counter)."""

from __future__ import annotations

import pytest

from salesforce_emulator.change_events import CDC_OBJECTS, DEFAULT_DELIVERIES_MAX, DEFAULT_RETENTION_SECONDS
from tests.integration.emulator.pubsub_client import Client, auth_metadata


@pytest.fixture
def pubsub(emulator_process, emulator):
    client = Client(emulator_process, auth_metadata(emulator), emulator)
    yield client
    client.close()
    emulator.pubsub(
        clear=True,
        keepalive_seconds=270,
        retention_seconds=DEFAULT_RETENTION_SECONDS,
        select={**dict.fromkeys(CDC_OBJECTS, True), "Account": False},
        deliveries={"used": 0, "max": DEFAULT_DELIVERIES_MAX},
    )
