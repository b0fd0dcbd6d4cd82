"""Describe's If-Modified-Since (salesforce-api.md §5.2), on its own and inside a Composite request:
304 with no body while an object's metadata stays as it was, the describe again once a field is
added or hidden; and the subrequest headers a Composite request may not set."""

from __future__ import annotations

import email.utils
import uuid
from typing import Any

import pytest
import requests

from salesforce_emulator.control import EmulatorControl
from tests.integration.conftest import https_session, login
from tests.processes import wait_until

pytestmark = pytest.mark.integration

VERSION = "59.0"


class Rest:
    """Plain HTTPS calls to the emulator's REST API with one session's token."""

    def __init__(self, emulator: EmulatorControl) -> None:
        self.emulator = emulator
        self.session = https_session(emulator.ca_file)
        self.token = login(emulator)["access_token"]

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **options: Any
    ) -> requests.Response:
        return self.session.request(
            method,
            f"{self.emulator.instance_url}/services/data/v{VERSION}/{path}",
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
            timeout=60,
            **options,
        )

    def describe(self, sobject: str, since: str | None) -> requests.Response:
        return self.request(
            "GET", f"sobjects/{sobject}/describe", {"If-Modified-Since": since} if since else None
        )

    def composite(self, *subrequests: dict[str, Any]) -> requests.Response:
        return self.request(
            "POST", "composite", json={"allOrNone": False, "compositeRequest": list(subrequests)}
        )

    def org_date_after_every_change(self) -> str:
        """An HTTP date (the org's clock, whole seconds) later than every metadata change made so
        far: the first Date the org sends after the second in which this was asked has passed."""
        first = email.utils.parsedate_to_datetime(self.request("GET", "limits").headers["Date"])

        def later() -> str | None:
            date = self.request("GET", "limits").headers["Date"]
            return date if email.utils.parsedate_to_datetime(date) > first else None

        return str(wait_until(later, timeout=30, what="the org's clock to reach the next second"))


def describe_subrequest(
    reference: str, sobject: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    subrequest: dict[str, Any] = {
        "method": "GET",
        "url": f"/services/data/v{VERSION}/sobjects/{sobject}/describe",
        "referenceId": reference,
    }
    if headers is not None:
        subrequest["httpHeaders"] = headers
    return subrequest


def field_names(body: dict[str, Any]) -> set[str]:
    return {f["name"] for f in body["fields"]}


@pytest.fixture
def rest(emulator) -> Rest:
    return Rest(emulator)


@pytest.fixture
def field() -> str:
    """A custom field name no other test adds (the emulator's org is shared by the session)."""
    return f"Probe{uuid.uuid4().hex[:8]}__c"


def test_describe_answers_304_without_a_body_until_a_field_is_added_or_hidden(emulator, rest, field):
    def unchanged_since() -> tuple[str, requests.Response] | None:
        since = rest.org_date_after_every_change()
        answer = rest.describe("Contact", since)
        return (since, answer) if answer.status_code == 304 else None

    # A CI run once had Contact's describe answer in full for a date a second after the change
    # before it (an earlier test's, this session's org is shared; cause not found): a date is
    # asked for again until the org says unchanged, which an org that never does fails.
    since, unchanged = wait_until(unchanged_since, timeout=90, what="Contact unchanged since a date")
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert "Date" in unchanged.headers and "Sforce-Limit-Info" in unchanged.headers

    emulator.add_field("Contact", field, "string")
    added = rest.describe("Contact", since)
    assert added.status_code == 200 and field in field_names(added.json())
    assert rest.describe("Lead", since).status_code == 304  # each object has its own time

    since = rest.org_date_after_every_change()
    assert rest.describe("Contact", since).status_code == 304
    emulator.hide_field("Contact", field)
    hidden = rest.describe("Contact", since)
    assert hidden.status_code == 200 and field not in field_names(hidden.json())
    assert rest.describe("Contact", None).status_code == 200  # no header: always the describe


def test_a_field_added_after_a_burst_of_writes_is_dated_by_the_orgs_clock(emulator, rest, field):
    # Each record stamp is a millisecond after the last, so a burst runs the stamps seconds ahead
    # of the org's clock; a metadata change dated by them would outlive every later Date header.
    emulator.create("Lead", *({"LastName": f"Burst {n}", "Company": "Burst"} for n in range(3000)))
    emulator.add_field("Lead", field, "string")
    since = rest.org_date_after_every_change()
    assert rest.describe("Lead", since).status_code == 304


def test_hiding_a_field_that_is_hidden_already_changes_nothing(emulator, rest, field):
    emulator.add_field("Lead", field, "string")
    emulator.hide_field("Lead", field)
    since = rest.org_date_after_every_change()
    emulator.hide_field("Lead", field)
    assert rest.describe("Lead", since).status_code == 304


@pytest.mark.parametrize("since", ["yesterday", "Wed, 3 Jul 2013 19:43:31"])
def test_a_date_that_does_not_parse_or_has_no_zone_is_ignored(rest, since):
    answer = rest.describe("Contact", since)
    assert answer.status_code == 200 and "Id" in field_names(answer.json())


def test_the_single_digit_day_of_the_documented_example_is_understood(rest):
    # The REST API guide's own example writes the day with one digit.
    assert rest.describe("Contact", "Wed, 3 Jul 2013 19:43:31 GMT").status_code == 200
    future = "Wed, 3 Jul 2999 19:43:31 GMT"
    assert rest.describe("Contact", future).status_code == 304


def test_inside_a_composite_request_a_304_subresult_has_a_null_body_and_costs_one_call(emulator, rest, field):
    since = rest.org_date_after_every_change()
    calls = emulator.api_calls()
    answer = rest.composite(
        describe_subrequest("describe_Opportunity", "Opportunity", {"If-Modified-Since": since}),
        describe_subrequest("describe_Contact", "Contact"),
    )
    assert answer.status_code == 200
    assert emulator.api_calls() - calls == 1
    unchanged, full = answer.json()["compositeResponse"]
    assert unchanged == {
        "body": None,
        "httpHeaders": {},
        "httpStatusCode": 304,
        "referenceId": "describe_Opportunity",
    }
    assert full["httpStatusCode"] == 200 and "Id" in field_names(full["body"])

    emulator.add_field("Opportunity", field, "string")
    [changed] = rest.composite(
        describe_subrequest("describe_Opportunity", "Opportunity", {"if-modified-since": since})
    ).json()["compositeResponse"]
    assert changed["httpStatusCode"] == 200 and field in field_names(changed["body"])


def test_subrequest_headers_reach_the_subrequest(emulator, rest):
    """Not only If-Modified-Since: a query's Sforce-Query-Options batch size applies too."""
    emulator.create("Contact", *[{"LastName": f"Batch{i}"} for i in range(250)])
    query = {
        "method": "GET",
        "url": f"/services/data/v{VERSION}/query?q=SELECT+Id+FROM+Contact",
        "referenceId": "contacts",
        "httpHeaders": {"Sforce-Query-Options": "batchSize=200"},
    }
    [page] = rest.composite(query).json()["compositeResponse"]
    assert page["httpStatusCode"] == 200 and len(page["body"]["records"]) == 200


@pytest.mark.parametrize("header", ["Accept", "authorization", "Content-Type"])
def test_a_header_the_subrequest_inherits_is_refused_whole(emulator, rest, header):
    calls = emulator.api_calls()
    answer = rest.composite(
        describe_subrequest("describe_Lead", "Lead", {header: "application/xml", "If-Modified-Since": "x"})
    )
    assert answer.status_code == 400
    [error] = answer.json()
    assert error["errorCode"] == "INVALID_COMPOSITE_REQUEST"
    assert header in error["message"] and "compositeRequest[0]" in error["message"]
    assert emulator.api_calls() - calls == 1  # a refused request is still a call


def test_headers_that_are_not_a_map_of_strings_are_refused(rest):
    answer = rest.composite(describe_subrequest("describe_Lead", "Lead", {"If-Modified-Since": 5}))
    assert answer.status_code == 400
    assert "httpHeaders must map names to strings" in answer.json()[0]["message"]
