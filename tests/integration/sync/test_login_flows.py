"""P10 (part): OppSync logs in with every flow orgs use: client credentials (the other tests),
JWT bearer (test_sync_engine), a refresh token and the username-password flow; a revoked
refresh token stops the sync with a clear error."""

from __future__ import annotations

import pytest
import requests
from django.core.management import CommandError, call_command

from opportunities.models import Opportunity, SyncStatus
from opportunities.salesforce.auth import SalesforceConfig
from opportunities.sync import service
from tests.integration.conftest import CLIENT_ID
from tests.integration.sync.checks import assert_database_equals_org, ok_cycle, run_cycle

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _relogin(org) -> None:
    """Drop OppSync's token and the org's sessions: the next call logs in again."""
    service._clients.clear()
    org.faults(expire_sessions=True)


def test_the_refresh_token_flow_syncs_and_a_revoked_token_stops_the_sync_by_name(
    org, synced_settings, admin_client
):
    org.generate(opportunities=15, people=12, seed=71)
    token = org.refresh_token(CLIENT_ID)
    synced_settings.SALESFORCE_REFRESH_TOKEN = token
    assert SalesforceConfig.from_settings().flow == "refresh_token"
    _relogin(org)
    ok_cycle()
    assert Opportunity.objects.count() == 15
    assert_database_equals_org(org)

    revoked = requests.post(
        f"{org.instance_url}/services/oauth2/revoke",
        data={"token": token},
        verify=str(org.ca_file),
        timeout=30,
    )
    assert revoked.status_code == 200
    _relogin(org)
    failed = run_cycle()
    assert failed.status == SyncStatus.FAILED and "expired access/refresh token" in failed.error_message
    panel = admin_client.get("/admin/sync-status/panel/").content.decode()
    assert "expired access/refresh token" in panel
    with pytest.raises(CommandError, match="expired access/refresh token"):
        call_command("salesforce_sync")


def test_the_username_password_flow_syncs_and_a_wrong_security_token_is_named(org, synced_settings):
    org.generate(opportunities=10, people=8, seed=72)
    synced_settings.SALESFORCE_USERNAME = "integration@oppsync.example"
    synced_settings.SALESFORCE_PASSWORD = "oppsync-demo-password"
    synced_settings.SALESFORCE_SECURITY_TOKEN = "DEMOSECURITYTOKEN"
    assert SalesforceConfig.from_settings().flow == "password"
    _relogin(org)
    ok_cycle()
    assert Opportunity.objects.count() == 10

    synced_settings.SALESFORCE_SECURITY_TOKEN = "AN-OLD-TOKEN"
    _relogin(org)
    failed = run_cycle()
    assert failed.status == SyncStatus.FAILED and "authentication failure" in failed.error_message
