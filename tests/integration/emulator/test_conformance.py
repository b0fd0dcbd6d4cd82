"""P10: the emulator as a Salesforce that ordinary clients cannot tell apart.

Each point of the issue is driven through simple-salesforce and through plain `requests` (the
`client` fixture runs a test once with each), and django-salesforce runs its ORM against the
emulator from a throwaway settings module. The clients are unmodified: they are only given the
emulator's URL and its CA.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import ssl
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from salesforce_emulator.control import EmulatorControl

from ..conftest import CLIENT_ID, CLIENT_SECRET, https_session

VERSION = "59.0"
PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Client:
    """GET/POST a REST path (`query`, `sobjects/Contact/describe`...) and get (status, JSON)."""

    name: str
    sf: Salesforce
    emulator: EmulatorControl

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        return self.call("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.call("POST", path, json=body)

    def call(self, method: str, path: str, **options: Any) -> tuple[int, Any]:
        if self.name == "simple-salesforce":
            try:
                return 200, self.sf.restful(path, method=method, **options)
            except SalesforceError as error:
                return error.status, error.content
        response = https_session(self.emulator.ca_file).request(
            method,
            f"{self.emulator.instance_url}/services/data/v{VERSION}/{path}",
            headers={"Authorization": f"Bearer {self.sf.session_id}"},
            timeout=60,
            **options,
        )
        return response.status_code, response.json() if response.content else None

    def query(self, soql: str) -> tuple[int, Any]:
        return self.get("query", q=soql)

    def records(self, soql: str) -> list[dict[str, Any]]:
        status, body = self.query(soql)
        assert status == 200, body
        return list(body["records"])

    def refused(self, soql: str) -> dict[str, Any]:
        status, body = self.query(soql)
        assert status == 400, body
        [error] = body
        return dict(error)


@pytest.fixture(params=["simple-salesforce", "requests"])
def client(request, sf, emulator) -> Client:
    return Client(request.param, sf, emulator)


@pytest.fixture
def tag() -> str:
    """A name no other test's records carry (the emulator's org is shared by the session)."""
    return f"Conf{uuid.uuid4().hex[:8]}"


# --- HTTP as Salesforce sends it -------------------------------------------------------------------


def raw_headers(emulator: EmulatorControl, path: str, token: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The header names exactly as they came over the wire (http.client keeps their case)."""
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    host, port = emulator.instance_url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=60)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.getheaders(), body


def test_response_header_names_are_spelled_as_salesforce_spells_them(emulator, sf, tag):
    emulator.create("Contact", *[{"LastName": f"{tag}-{i}"} for i in range(3)])
    status, headers, _ = raw_headers(
        emulator, f"/services/data/v{VERSION}/query?q=SELECT+Id+FROM+Contact+LIMIT+1", sf.session_id
    )
    names = [name for name, _ in headers]
    assert status == 200
    assert {"Content-Type", "Sforce-Limit-Info", "Date"} <= set(names)
    assert all(name[0].isupper() for name in names), names

    job = sf.restful(
        "jobs/query",
        method="POST",
        json={"operation": "query", "query": f"SELECT Id FROM Contact WHERE LastName LIKE '{tag}%'"},
    )
    while sf.restful(f"jobs/query/{job['id']}")["state"] != "JobComplete":
        pass  # the emulator completes a job on the first poll unless told otherwise
    status, headers, _ = raw_headers(
        emulator, f"/services/data/v{VERSION}/jobs/query/{job['id']}/results?maxRecords=2", sf.session_id
    )
    spelled = dict(headers)
    assert status == 200
    assert spelled["Sforce-NumberOfRecords"] == "2"
    assert spelled["Sforce-Locator"] not in ("", "null")
    assert spelled["Content-Type"].startswith("text/csv")


def test_simple_salesforce_bulk2_reads_every_page(emulator, sf, tag):
    emulator.create("Contact", *[{"LastName": f"{tag}-{i:03d}"} for i in range(25)])
    pages = list(
        sf.bulk2.Contact.query(
            f"SELECT Id, LastName FROM Contact WHERE LastName LIKE '{tag}%'", max_records=10
        )
    )
    rows = [line for page in pages for line in str(page).strip().splitlines()[1:]]
    assert len(pages) == 3
    assert len(rows) == 25


def test_a_bulk_query_job_with_order_by_is_refused_as_bulk_api_2_refuses_it(client, sf, tag):
    """Bulk API 2.0 does not support ORDER BY in a query job (it would disable PK chunking): the
    job is refused when created, in Salesforce's error shape, while REST takes the same query and
    Bulk takes it without the ORDER BY."""
    client.emulator.create("Contact", *[{"LastName": f"{tag}-{i}"} for i in range(3)])
    ordered = (
        f"SELECT Id, LastName FROM Contact WHERE LastName LIKE '{tag}%' ORDER BY SystemModstamp ASC, Id ASC"
    )
    jobs_before = client.emulator.stats()["bulk_jobs"]
    for operation in ("query", "queryAll"):
        status, body = client.post("jobs/query", {"operation": operation, "query": ordered})
        assert status == 400, body
        [error] = body
        assert error["errorCode"] == "API_ERROR"
        assert "ORDER BY is not supported in Bulk API 2.0 queries" in error["message"]
    assert client.emulator.stats()["bulk_jobs"] == jobs_before  # no job was made
    unordered = ordered.split(" ORDER BY")[0]
    # Lower case, one key, DESC: still ORDER BY.
    status, _ = client.post("jobs/query", {"operation": "query", "query": f"{unordered} order by Id desc"})
    assert status == 400
    assert len(client.records(ordered)) == 3  # REST orders as asked
    status, job = client.post("jobs/query", {"operation": "query", "query": unordered})
    assert status == 200 and job["state"] == "UploadComplete", job
    pages = list(sf.bulk2.Contact.query(unordered, wait=0.05))
    assert sum(len(page.splitlines()) - 1 for page in pages) == 3


def test_the_resource_indexes_and_record_counts(client):
    status, index = client.get("")
    assert status == 200 and index["query"] == f"/services/data/v{VERSION}/query"
    status, counts = client.get("limits/recordCount", sObjects="Contact,Nope__c")
    assert status == 200 and [entry["name"] for entry in counts["sObjects"]] == ["Contact"]


# --- OAuth as orgs use it ---------------------------------------------------------------------------


def token_request(emulator: EmulatorControl, **form: str) -> requests.Response:
    return https_session(emulator.ca_file).post(
        f"{emulator.instance_url}/services/oauth2/token", data=form, timeout=30
    )


def test_refresh_token_and_password_grants_with_plain_requests(emulator):
    refresh = emulator.refresh_token(CLIENT_ID)
    granted = token_request(
        emulator,
        grant_type="refresh_token",
        refresh_token=refresh,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert granted.status_code == 200 and granted.json()["access_token"]
    password = token_request(
        emulator,
        grant_type="password",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        username="integration@oppsync.example",
        password="oppsync-demo-password" + "DEMOSECURITYTOKEN",
    )
    assert password.status_code == 200
    without_token = token_request(
        emulator,
        grant_type="password",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        username="integration@oppsync.example",
        password="oppsync-demo-password",
    )
    assert without_token.status_code == 400 and without_token.json()["error"] == "invalid_grant"

    revoked = https_session(emulator.ca_file).post(
        f"{emulator.instance_url}/services/oauth2/revoke", data={"token": refresh}, timeout=30
    )
    assert revoked.status_code == 200
    again = token_request(
        emulator,
        grant_type="refresh_token",
        refresh_token=refresh,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_the_token_signature_is_the_documented_hmac(emulator):
    import base64
    import hashlib
    import hmac

    body = token_request(
        emulator, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    ).json()
    expected = hmac.new(CLIENT_SECRET.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256)
    assert body["signature"] == base64.b64encode(expected.digest()).decode()


# --- SOQL semantics ---------------------------------------------------------------------------------


def test_text_compares_and_sorts_case_insensitively_unicode_included(client, emulator, tag):
    emulator.create(
        "Contact",
        {"LastName": f"{tag}-Élodie", "FirstName": "b"},
        {"LastName": f"{tag}-ÖSTER", "FirstName": "A"},
        {"LastName": f"{tag}-zed", "FirstName": "C"},
    )
    lower = f"{tag}-élodie".lower()
    assert [
        r["LastName"] for r in client.records(f"SELECT LastName FROM Contact WHERE LastName = '{lower}'")
    ] == [f"{tag}-Élodie"]
    others = client.records(
        f"SELECT LastName FROM Contact WHERE LastName LIKE '{tag}%' AND LastName != '{lower}'"
    )
    assert {r["LastName"] for r in others} == {f"{tag}-ÖSTER", f"{tag}-zed"}
    found = client.records(
        f"SELECT LastName FROM Contact WHERE LastName IN ('{tag.upper()}-öster', '{tag.lower()}-ZED')"
    )
    assert len(found) == 2
    assert len(client.records(f"SELECT Id FROM Contact WHERE LastName LIKE '{tag.lower()}-ö%'")) == 1
    ordered = client.records(f"SELECT FirstName FROM Contact WHERE LastName LIKE '{tag}%' ORDER BY FirstName")
    assert [r["FirstName"] for r in ordered] == ["A", "b", "C"]


def test_fifteen_character_ids_work_wherever_eighteen_do(client, emulator, tag):
    [contact] = emulator.create("Contact", {"LastName": tag})
    short = contact[:15]
    assert [r["Id"] for r in client.records(f"SELECT Id FROM Contact WHERE Id = '{short}'")] == [contact]
    assert len(client.records(f"SELECT Id FROM Contact WHERE Id IN ('{short}', '{contact.lower()}')")) == 1
    status, record = client.get(f"sobjects/Contact/{short}")
    assert status == 200 and record["Id"] == contact
    error = client.refused("SELECT Id FROM Contact WHERE Id = 'not-an-id'")
    assert error["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"


def test_count_and_count_of_a_field(client, emulator, tag):
    emulator.create(
        "Contact",
        *[{"LastName": f"{tag}-{i}", "Email": "a@example.com" if i < 2 else None} for i in range(5)],
    )
    status, body = client.query(f"SELECT COUNT() FROM Contact WHERE LastName LIKE '{tag}%'")
    assert status == 200 and body["totalSize"] == 5 and body["records"] == []
    [row] = client.records(f"SELECT COUNT(Id) total, COUNT(Email) FROM Contact WHERE LastName LIKE '{tag}%'")
    assert row["attributes"]["type"] == "AggregateResult"
    assert row["total"] == 5 and row["expr1"] == 2
    assert client.refused("SELECT COUNT(), Id FROM Contact")["errorCode"] == "MALFORMED_QUERY"


def test_limit_and_offset(client, emulator, tag):
    emulator.create("Contact", *[{"LastName": f"{tag}-{i}"} for i in range(7)])
    status, body = client.query(
        f"SELECT LastName FROM Contact WHERE LastName LIKE '{tag}%' ORDER BY LastName LIMIT 3 OFFSET 2"
    )
    assert status == 200 and body["totalSize"] == 3
    assert [r["LastName"] for r in body["records"]] == [f"{tag}-2", f"{tag}-3", f"{tag}-4"]
    error = client.refused("SELECT Id FROM Contact OFFSET 2001")
    assert error["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_relative_date_literals(client, emulator, tag):
    today = dt.datetime.now(dt.UTC).date()
    quarter_start = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    dates = {
        "today": today,
        "yesterday": today - dt.timedelta(days=1),
        "in-five-days": today + dt.timedelta(days=5),
        "long-ago": today - dt.timedelta(days=400),
        "quarter-start": quarter_start,
    }
    emulator.create(
        "Opportunity",
        *[
            {"Name": f"{tag}-{name}", "StageName": "Prospecting", "CloseDate": day.isoformat()}
            for name, day in dates.items()
        ],
    )

    def names(condition: str) -> set[str]:
        rows = client.records(f"SELECT Name FROM Opportunity WHERE Name LIKE '{tag}%' AND {condition}")
        return {r["Name"].removeprefix(f"{tag}-") for r in rows}

    assert names("CloseDate = TODAY") == {"today"} | ({"quarter-start"} if quarter_start == today else set())
    assert names("CloseDate = YESTERDAY") == {"yesterday"} | (
        {"quarter-start"} if quarter_start == dates["yesterday"] else set()
    )
    assert names("CloseDate = LAST_N_DAYS:3") >= {"today", "yesterday"}
    assert "long-ago" not in names("CloseDate = LAST_N_DAYS:3")
    assert names("CloseDate = NEXT_N_DAYS:7") == {"in-five-days"}
    assert "quarter-start" in names("CloseDate = THIS_QUARTER")
    assert "long-ago" not in names("CloseDate = THIS_QUARTER")
    assert names("CloseDate < LAST_N_DAYS:120") == {"long-ago"}  # before the window
    # On a datetime field, the same literals cover whole days (the org runs on GMT).
    assert (
        len(client.records(f"SELECT Id FROM Opportunity WHERE Name LIKE '{tag}%' AND CreatedDate = TODAY"))
        == 5
    )
    assert (
        client.records(f"SELECT Id FROM Opportunity WHERE Name LIKE '{tag}%' AND CreatedDate > TODAY") == []
    )


def test_a_child_relationship_subquery(client, emulator, tag):
    [alice, bob] = emulator.create("Contact", {"LastName": f"{tag}-alice"}, {"LastName": f"{tag}-bob"})
    [deal, _lonely] = emulator.create(
        "Opportunity",
        {"Name": f"{tag}-deal", "StageName": "Prospecting", "CloseDate": "2031-01-01"},
        {"Name": f"{tag}-lonely", "StageName": "Prospecting", "CloseDate": "2031-01-01"},
    )
    emulator.create(
        "OpportunityContactRole",
        {"OpportunityId": deal, "ContactId": alice, "Role": "Decision Maker"},
        {"OpportunityId": deal, "ContactId": bob, "Role": "Evaluator"},
    )
    rows = client.records(
        "SELECT Name, (SELECT Role, Contact.LastName FROM OpportunityContactRoles ORDER BY Role DESC) "
        f"FROM Opportunity WHERE Name LIKE '{tag}%' ORDER BY Name"
    )
    by_name = {r["Name"]: r for r in rows}
    nested = by_name[f"{tag}-deal"]["OpportunityContactRoles"]
    assert nested["totalSize"] == 2 and nested["done"] is True
    assert [(r["Role"], r["Contact"]["LastName"]) for r in nested["records"]] == [
        ("Evaluator", f"{tag}-bob"),
        ("Decision Maker", f"{tag}-alice"),
    ]
    assert nested["records"][0]["attributes"]["type"] == "OpportunityContactRole"
    assert by_name[f"{tag}-lonely"]["OpportunityContactRoles"] is None
    error = client.refused("SELECT Name, (SELECT Id FROM NoSuchChildren) FROM Opportunity")
    assert error["errorCode"] == "INVALID_TYPE"


def test_semi_join_and_anti_join(client, emulator, tag):
    [alice, bob, carol] = emulator.create(
        "Contact", {"LastName": f"{tag}-alice"}, {"LastName": f"{tag}-bob"}, {"LastName": f"{tag}-carol"}
    )
    [deal] = emulator.create(
        "Opportunity", {"Name": f"{tag}-deal", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    emulator.create(
        "OpportunityContactRole",
        {"OpportunityId": deal, "ContactId": alice, "Role": "Decision Maker"},
        {"OpportunityId": deal, "ContactId": bob, "Role": "Evaluator"},
    )
    deciders = client.records(
        f"SELECT LastName FROM Contact WHERE LastName LIKE '{tag}%' AND "
        "Id IN (SELECT ContactId FROM OpportunityContactRole WHERE Role = 'decision maker')"
    )
    assert [r["LastName"] for r in deciders] == [f"{tag}-alice"]
    without_roles = client.records(
        f"SELECT LastName FROM Contact WHERE LastName LIKE '{tag}%' AND "
        "Id NOT IN (SELECT ContactId FROM OpportunityContactRole)"
    )
    assert [r["LastName"] for r in without_roles] == [f"{tag}-carol"]
    with_roles = client.records(
        "SELECT Name FROM Opportunity WHERE Id IN (SELECT OpportunityId FROM OpportunityContactRole "
        f"WHERE Contact.LastName = '{tag}-BOB')"
    )
    assert [r["Name"] for r in with_roles] == [f"{tag}-deal"]
    assert carol  # created to be left out


def test_describe_lists_child_relationships(client):
    status, describe = client.get("sobjects/Opportunity/describe")
    assert status == 200
    [roles] = [
        c for c in describe["childRelationships"] if c["relationshipName"] == "OpportunityContactRoles"
    ]
    assert roles["childSObject"] == "OpportunityContactRole" and roles["field"] == "OpportunityId"
    assert roles["cascadeDelete"] is True
    status, account = client.get("sobjects/Account/describe")
    assert {"Contacts", "Opportunities"} <= {c["relationshipName"] for c in account["childRelationships"]}


@pytest.mark.parametrize(
    ("soql", "code", "words"),
    [
        (
            "SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Email = 'c'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = '2030-01-01'",
            "INVALID_FIELD",
            "must be of type date and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate > 2030-01-01T00:00:00Z",
            "INVALID_FIELD",
            "must be of type date",
        ),
        (
            "SELECT Id FROM Contact WHERE SystemModstamp > '2030-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "must be of type dateTime and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Contact WHERE SystemModstamp > 2030-01-01",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        ("SELECT Id FROM Opportunity WHERE Amount = '5'", "INVALID_FIELD", "must be of type double"),
        ("SELECT Id FROM Contact WHERE LastName = 5", "INVALID_FIELD", "should be enclosed in quotes"),
        (
            "SELECT Id FROM Contact WHERE Description = 'x'",
            "INVALID_FIELD",
            "field 'Description' can not be filtered in a query call",
        ),
        ("SELECT Id FROM Contact ORDER BY Description", "INVALID_FIELD", "can not be sorted"),
        (
            "SELECT Id, LastName, lastname FROM Contact",
            "MALFORMED_QUERY",
            "duplicate field selected: lastname",
        ),
        ("SELECT Id, Contact.Id FROM Contact", "MALFORMED_QUERY", "duplicate field selected: Id"),
    ],
)
def test_what_salesforce_refuses_is_refused_with_its_error_code(client, soql, code, words):
    error = client.refused(soql)
    assert error["errorCode"] == code
    assert words in error["message"]


# --- records as Salesforce returns them -------------------------------------------------------------


def test_compound_address_fields_are_objects_of_their_components(client, emulator, tag):
    [home, nowhere] = emulator.create(
        "Contact",
        {
            "LastName": f"{tag}-home",
            "MailingStreet": "1 Main St",
            "MailingCity": "Zürich",
            "MailingCountry": "CH",
        },
        {"LastName": f"{tag}-nowhere"},
    )
    rows = client.records(
        f"SELECT LastName, MailingAddress FROM Contact WHERE LastName LIKE '{tag}%' ORDER BY LastName"
    )
    address = rows[0]["MailingAddress"]
    assert address["city"] == "Zürich" and address["street"] == "1 Main St" and address["country"] == "CH"
    assert address["postalCode"] is None and "latitude" in address
    assert rows[1]["MailingAddress"] is None
    status, record = client.get(f"sobjects/Contact/{home}")
    assert status == 200 and record["MailingAddress"]["city"] == "Zürich"
    assert nowhere
    error = client.refused("SELECT Id FROM Contact WHERE MailingAddress = 'x'")
    assert error["errorCode"] == "INVALID_FIELD"


def test_deleting_an_opportunity_takes_its_roles_along(client, emulator, tag):
    [contact] = emulator.create("Contact", {"LastName": tag})
    [deal] = emulator.create(
        "Opportunity", {"Name": tag, "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [role] = emulator.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact})
    emulator.delete("Opportunity", deal)
    assert client.records(f"SELECT Id FROM OpportunityContactRole WHERE Id = '{role}'") == []
    status, deleted = client.get(
        "queryAll", q=f"SELECT Id, IsDeleted FROM OpportunityContactRole WHERE Id = '{role}'"
    )
    assert status == 200 and deleted["records"][0]["IsDeleted"] is True


def test_a_naive_replication_date_gets_salesforces_error_code(client):
    status, body = client.get(
        "sobjects/Contact/updated/", start="2026-11-28T10:00:00", end="2026-11-28T12:00:00Z"
    )
    assert status == 400
    assert body[0]["errorCode"] == "INVALID_REPLICATION_DATE" and "time zone" in body[0]["message"]


# --- composite ----------------------------------------------------------------------------------------


def subrequest(reference: str, url: str, method: str = "GET", body: Any = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": method,
        "url": f"/services/data/v{VERSION}/{url}",
        "referenceId": reference,
    }
    if body is not None:
        request["body"] = body
    return request


def test_composite_references_between_subrequests(client, emulator, tag):
    emulator.create("Contact", {"LastName": tag, "Email": "ref@example.com"})
    status, body = client.post(
        "composite",
        {
            "allOrNone": False,
            "compositeRequest": [
                subrequest("found", f"query?q=SELECT+Id+FROM+Contact+WHERE+LastName+=+'{tag}'"),
                subrequest("contact", "sobjects/Contact/@{found.records[0].Id}"),
                subrequest("broken", "query?q=SELECT+Nope+FROM+Contact"),
                subrequest("dependent", "sobjects/Contact/@{broken.records[0].Id}"),
                subrequest("missing", "sobjects/Contact/@{found.records[5].Id}"),
            ],
        },
    )
    assert status == 200
    responses = {r["referenceId"]: r for r in body["compositeResponse"]}
    assert responses["contact"]["httpStatusCode"] == 200
    assert responses["contact"]["body"]["Email"] == "ref@example.com"
    assert responses["broken"]["body"][0]["errorCode"] == "INVALID_FIELD"
    for name in ("dependent", "missing"):
        assert responses[name]["httpStatusCode"] == 400
        assert responses[name]["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_composite_all_or_none_halts_and_rolls_back(client, emulator, tag):
    [contact] = emulator.create("Contact", {"LastName": tag, "Title": "before"})
    status, body = client.post(
        "composite",
        {
            "allOrNone": True,
            "compositeRequest": [
                subrequest("read", f"sobjects/Contact/{contact}"),
                subrequest("write", f"sobjects/Contact/{contact}", method="PATCH", body={"Title": "after"}),
                subrequest("broken", "query?q=SELECT+Nope+FROM+Contact"),
                subrequest("later", "query?q=SELECT+Id+FROM+Contact+LIMIT+1"),
            ],
        },
    )
    assert status == 200
    responses = {r["referenceId"]: r for r in body["compositeResponse"]}
    assert list(responses) == ["read", "write", "broken", "later"]
    assert responses["broken"]["body"][0]["errorCode"] == "INVALID_FIELD"
    for name in ("read", "write", "later"):
        assert responses[name]["httpStatusCode"] == 400
        assert responses[name]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    [row] = client.records(f"SELECT Title FROM Contact WHERE Id = '{contact}'")
    assert row["Title"] == "before"  # the PATCH was rolled back


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"compositeRequest": ["GET /services/data"]}, "compositeRequest[0] is not an object"),
        ({"compositeRequest": [{"method": "GET", "url": "/services/data/v59.0/limits"}]}, "referenceId"),
        (
            {
                "compositeRequest": [
                    {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": "query:Lead"}
                ]
            },
            "letters, digits or underscores",
        ),
        (
            {
                "compositeRequest": [
                    {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": "twice"},
                    {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": "twice"},
                ]
            },
            "must be unique",
        ),
        (["not", "an", "object"], "compositeRequest is required"),
    ],
)
def test_a_malformed_composite_request_is_refused_whole(client, body, words):
    status, errors = client.post("composite", body)
    assert status == 400
    assert words in errors[0]["message"]


# --- django-salesforce --------------------------------------------------------------------------------


def test_django_salesforce_queries_pages_and_describes_the_emulator(emulator, tag):
    emulator.create(
        "Contact",
        *[{"LastName": f"{tag}-{i:05d}", "FirstName": "Ünïcode" if i == 3 else "A"} for i in range(2105)],
        {"LastName": f"{tag}-Special", "MailingCity": "Zürich"},
    )
    [big, small] = emulator.create(
        "Opportunity",
        {"Name": f"{tag} big", "StageName": "Prospecting", "CloseDate": "2031-01-01", "Amount": 5},
        {"Name": f"{tag} small", "StageName": "Prospecting", "CloseDate": "2029-01-01"},
    )
    contacts = {
        r["LastName"]: r["Id"] for r in emulator.records("Contact") if r["LastName"].startswith(f"{tag}-0000")
    }
    emulator.create(
        "OpportunityContactRole",
        {"OpportunityId": big, "ContactId": contacts[f"{tag}-00000"], "Role": "Decision Maker"},
        {"OpportunityId": small, "ContactId": contacts[f"{tag}-00001"], "Role": "Evaluator"},
    )
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))},
        "DJANGO_SETTINGS_MODULE": "tests.integration.emulator.dsf_probe.settings",
        "PROBE_HOST": emulator.instance_url,
        "PROBE_CLIENT_ID": CLIENT_ID,
        "PROBE_CLIENT_SECRET": CLIENT_SECRET,
        "PROBE_USER": "integration@oppsync.example",
        "PROBE_PASSWORD": "oppsync-demo-password" + "DEMOSECURITYTOKEN",
        "REQUESTS_CA_BUNDLE": str(emulator.ca_file),
    }
    finished = subprocess.run(  # our own probe module
        [sys.executable, "-m", "tests.integration.emulator.dsf_probe.probe", tag],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    seen = json.loads(finished.stdout.strip().splitlines()[-1])
    assert seen["count"] == 2106
    assert seen["iterated"] == 2106  # two pages of 2,000 and more, followed by nextRecordsUrl
    assert seen["iexact"] == 1 and seen["exact_other_case"] == 1 and seen["in"] == 2
    assert seen["sliced"] == [f"{tag}-00010", f"{tag}-00011", f"{tag}-00012"]
    assert seen["exists"] is True
    assert seen["city"] == "Zürich"
    assert seen["recent"] == 2106
    assert seen["deals_closing_after"] == 1
    assert seen["roles"] == ["Decision Maker", "Evaluator"]
    assert seen["roles_through_parent"] == [f"Decision Maker:{tag}-00000", f"Evaluator:{tag}-00001"]
    assert seen["tables"] == ["Contact", "Opportunity", "OpportunityContactRole"]
    assert {"ContactId", "OpportunityId", "Role", "IsPrimary"} <= set(seen["role_columns"])
