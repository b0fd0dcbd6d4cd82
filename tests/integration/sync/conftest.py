from __future__ import annotations

import pytest

from opportunities.sync import service
from salesforce_emulator.control import EmulatorProcess
from tests.integration.conftest import CLIENT_ID, CLIENT_SECRET
from tests.processes import free_port

from .checks import assert_totals_current, cover_picklists_and_activity_times


@pytest.fixture
def org(tmp_path):
    """A fresh emulated org of its own for each test."""
    process = EmulatorProcess(tmp_path / "org", free_port())
    control = process.start()
    control.process = process
    yield control
    process.stop()


def salesforce_environment(org) -> dict[str, str]:
    return {
        "SALESFORCE_LOGIN_URL": org.instance_url,
        "SALESFORCE_CLIENT_ID": CLIENT_ID,
        "SALESFORCE_CLIENT_SECRET": CLIENT_SECRET,
        "SALESFORCE_CA_BUNDLE": str(org.ca_file),
    }


@pytest.fixture
def synced_settings(settings, org):
    """Point the sync at the test's org; fast retries so fault tests stay quick."""
    for name, value in salesforce_environment(org).items():
        setattr(settings, name, value)
    settings.SALESFORCE_RETRY_BACKOFF = 0.05
    settings.SALESFORCE_SYNC_LOCK_SECONDS = 30
    service._clients.clear()
    yield settings
    service._clients.clear()


@pytest.fixture(autouse=True)
def totals_stay_current(request):
    """After every sync test, whatever the cycles did, the per-person totals, picklist values and
    activity times the smart lists compare equal a recomputation from the roles, opportunities
    and activities. The rows cover them from the start, as after a rebuild."""
    uses_database = request.node.get_closest_marker("django_db") is not None
    if uses_database:
        cover_picklists_and_activity_times()
    yield
    if uses_database:
        assert_totals_current()
