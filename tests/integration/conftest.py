from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce

from salesforce_emulator.control import EmulatorControl, EmulatorProcess
from tests.processes import free_port

CLIENT_ID = "oppsync-demo-client"
CLIENT_SECRET = "oppsync-demo-secret"


@pytest.fixture(scope="session")
def emulator_process(tmp_path_factory):
    process = EmulatorProcess(tmp_path_factory.mktemp("emulator"), free_port())
    process.start()
    yield process
    process.stop()


@pytest.fixture
def emulator(emulator_process):
    control = EmulatorControl(emulator_process.instance_url, emulator_process.ca_file)
    control.clear_faults()
    yield control
    control.clear_faults()


def https_session(ca_file) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_file)
    return session


def login(emulator: EmulatorControl) -> dict:
    response = https_session(emulator.ca_file).post(
        f"{emulator.instance_url}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture
def sf(emulator) -> Salesforce:
    """simple-salesforce itself, on a direct session over HTTPS with verification on."""
    token = login(emulator)
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=https_session(emulator.ca_file),
        version="59.0",
    )
