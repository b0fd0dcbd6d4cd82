"""P9: the emulator is safe to leave running: object names from URLs never reach SQL unchecked,
and the control API answers only this machine unless told otherwise."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from salesforce_emulator.app import loopback_only

INJECTIONS = [
    "Contact WHERE 1=1 UNION SELECT sql, 1 FROM sqlite_master --",
    "Contact; DROP TABLE records_Opportunity; --",
    "sqlite_master",
    "Contact%20",
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_object_names_in_control_urls_are_checked_against_the_schema(emulator, name):
    before = len(emulator.records("Opportunity"))
    response = emulator.http.get(f"{emulator.instance_url}/__emulator__/records/{name}", timeout=30)
    assert response.status_code == 404 and response.json()["error"] == "NOT_FOUND"
    assert "sqlite_master" not in response.text.replace(name, "")
    write = emulator.http.post(
        f"{emulator.instance_url}/__emulator__/records/{name}",
        json={"records": [{"LastName": "x"}]},
        timeout=30,
    )
    assert write.status_code in (400, 404) and "NOT_FOUND" in write.text
    assert len(emulator.records("Opportunity")) == before  # the table is still there, untouched


def test_the_rest_api_refuses_an_unknown_object_too(emulator, sf):
    response = emulator.http.get(
        f"{emulator.instance_url}/services/data/v59.0/sobjects/Contact;DROP/003000000000001AAA",
        headers={"Authorization": f"Bearer {sf.session_id}"},
        timeout=30,
    )
    assert response.status_code == 404


def _call(client: tuple[str, int]) -> int:
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def run() -> Response:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/__emulator__/purge",
            "headers": [],
            "client": client,
        }
        return await loopback_only(endpoint)(Request(scope))

    return asyncio.run(run()).status_code


def test_the_control_api_answers_only_loopback_clients():
    assert _call(("127.0.0.1", 50000)) == 200
    assert _call(("::1", 50000)) == 200
    assert _call(("203.0.113.5", 50000)) == 403
    assert _call(("10.0.0.7", 50000)) == 403
