from __future__ import annotations

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from opportunities.sync import service
from oppsync_site.roles import ADMINISTRATORS, MARKETERS, VIEWERS, roles_apply
from salesforce_emulator.control import EmulatorProcess
from tests.integration.conftest import CLIENT_ID, CLIENT_SECRET
from tests.processes import free_port

ROLE_USERS = {"administrator": ADMINISTRATORS, "marketer": MARKETERS, "viewer": VIEWERS}


@pytest.fixture(scope="module")
def synced_data(django_db_setup, django_db_blocker, tmp_path_factory):
    """An emulated org with a custom field, synced for real into the test database once per module;
    users of every role with API tokens."""
    process = EmulatorProcess(tmp_path_factory.mktemp("api-org"), free_port())
    org = process.start()
    org.add_field("Opportunity", "Region__c", "picklist", values=["EMEA", "AMER", "APAC"])
    org.add_field("Opportunity", "Secret__c", "string")
    org.generate(opportunities=260, people=240, seed=31)
    ids = [r["Id"] for r in org.records("Opportunity")]
    org.set_values_silently(
        "Opportunity", "Region__c", {i: ["EMEA", "AMER", "APAC"][n % 3] for n, i in enumerate(ids)}
    )
    org.set_values_silently("Opportunity", "Secret__c", dict.fromkeys(ids, "hidden"))
    org.hide_field("Opportunity", "Secret__c")
    with django_db_blocker.unblock():
        with override_settings(
            SALESFORCE_LOGIN_URL=org.instance_url,
            SALESFORCE_CLIENT_ID=CLIENT_ID,
            SALESFORCE_CLIENT_SECRET=CLIENT_SECRET,
            SALESFORCE_CA_BUNDLE=str(org.ca_file),
        ):
            service._clients.clear()
            cycle = service.sync_cycle_run()
            assert cycle is not None and cycle.status == "succeeded", cycle and cycle.error_message
            org.sales_team_act(times=30)
            assert service.sync_cycle_run().status == "succeeded"
            service._clients.clear()
        roles_apply(django_apps)
        tokens = {}
        for name, group in ROLE_USERS.items():
            user = User.objects.create_user(username=f"api-{name}", password="pw", is_staff=True)
            user.groups.add(Group.objects.get(name=group))
            tokens[name] = Token.objects.create(user=user).key
        tokens["nobody"] = Token.objects.create(
            user=User.objects.create_user(username="api-nobody", password="pw")
        ).key
        yield {"org": org, "tokens": tokens}
        call_command("flush", interactive=False, verbosity=0)
    process.stop()


@pytest.fixture
def api(synced_data, db):
    def client_for(role: str | None) -> APIClient:
        client = APIClient()
        if role is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {synced_data['tokens'][role]}")
        return client

    return client_for
