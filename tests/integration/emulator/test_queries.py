"""SOQL, paging by nextRecordsUrl, getUpdated/getDeleted, limits, composite and Bulk API 2.0,
driven by simple-salesforce 1.12 over HTTPS."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC)


def _opportunity(name: str, **extra) -> dict:
    return {"Name": name, "StageName": "Prospecting", "CloseDate": "2031-06-30", "Amount": 1000.0, **extra}


def test_query_shape_matches_the_reference(emulator, sf):
    [account] = emulator.create("Account", {"Name": "Shape Inc"})
    [opportunity] = emulator.create("Opportunity", _opportunity("Shape deal", AccountId=account))
    [orphan] = emulator.create("Opportunity", _opportunity("No account"))
    result = sf.query(
        f"SELECT Id, Name, Account.Name, Amount, CloseDate, IsClosed, SystemModstamp FROM Opportunity WHERE Id IN ('{opportunity}', '{orphan}') ORDER BY Name"
    )
    assert result["totalSize"] == 2
    assert result["done"] is True
    assert "nextRecordsUrl" not in result
    first, second = result["records"]
    assert list(first) == [
        "attributes",
        "Id",
        "Name",
        "Account",
        "Amount",
        "CloseDate",
        "IsClosed",
        "SystemModstamp",
    ]
    assert first["attributes"] == {
        "type": "Opportunity",
        "url": f"/services/data/v59.0/sobjects/Opportunity/{orphan}",
    }
    assert first["Account"] is None
    assert second["Account"]["Name"] == "Shape Inc"
    assert second["Account"]["attributes"]["type"] == "Account"
    assert second["Amount"] == 1000.0
    assert second["CloseDate"] == "2031-06-30"
    assert second["IsClosed"] is False
    stamp = second["SystemModstamp"]
    assert len(stamp) == 28 and stamp.endswith("+0000") and stamp[19] == "."


def test_query_all_iter_pages_by_next_records_url_with_include_deleted(emulator, sf):
    ids = emulator.create("Lead", *[{"LastName": f"Pager {n}", "Company": "Paging Co"} for n in range(7)])
    emulator.delete("Lead", ids[0])
    emulator.faults(page_size=3)
    where = "WHERE Company = 'Paging Co'"
    first = sf.query(f"SELECT Id FROM Lead {where}", include_deleted=True)
    assert first["totalSize"] == 7 and first["done"] is False and len(first["records"]) == 3
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    assert first["nextRecordsUrl"].endswith("-3")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["nextRecordsUrl"].endswith("-6") and second["totalSize"] == 7
    # A page can be fetched again (a client retrying after a dropped connection).
    assert sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)["records"] == second["records"]

    everything = list(sf.query_all_iter(f"SELECT Id, IsDeleted FROM Lead {where}", include_deleted=True))
    assert sorted(r["Id"] for r in everything) == sorted(ids)
    assert [r["IsDeleted"] for r in everything if r["Id"] == ids[0]] == [True]
    live = list(sf.query_all_iter(f"SELECT Id FROM Lead {where}"))
    assert len(live) == 6


def test_batch_size_header_is_clamped_between_200_and_2000(emulator, sf):
    emulator.create("Contact", *[{"LastName": f"Batch {n}", "Department": "Batching"} for n in range(250)])
    soql = "SELECT Id FROM Contact WHERE Department = 'Batching'"
    small = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(small["records"]) == 200 and not small["done"]
    big = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=5000"})
    assert len(big["records"]) == 250 and big["done"]


def test_an_unknown_locator_is_invalid_query_locator(sf):
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query_more("/services/data/v59.0/query/01gNOSUCHLOCATOR00-2000", identifier_is_url=True)
    assert error.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY"),
        ("SELECT Id, Nope__c FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE Nope = 1", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
    ],
)
def test_soql_errors_have_real_codes(sf, soql, code):
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query(soql)
    assert error.value.status == 400
    assert error.value.content[0]["errorCode"] == code


def test_soql_where_supports_the_subset(emulator, sf):
    ids = emulator.create(
        "Opportunity",
        _opportunity("Subset A", Amount=10.0, LeadSource="Web"),
        _opportunity("Subset B", Amount=20.0, LeadSource="Other"),
        _opportunity("Subset C's", Amount=None, StageName="Closed Won"),
    )

    def names(where):
        rows = sf.query_all(
            f"SELECT Name FROM Opportunity WHERE Name LIKE 'Subset%' AND ({where}) ORDER BY Name"
        )["records"]
        return [r["Name"] for r in rows]

    assert names("Amount > 15") == ["Subset B"]
    assert names("Amount >= 10 AND Amount <= 10.0") == ["Subset A"]
    assert names("Amount = NULL") == ["Subset C's"]
    assert names("Amount != NULL") == ["Subset A", "Subset B"]
    assert names("LeadSource IN ('Web', 'Other')") == ["Subset A", "Subset B"]
    assert names("LeadSource NOT IN ('Web')") == ["Subset B", "Subset C's"]
    assert names("IsWon = TRUE OR (Amount < 15 AND NOT LeadSource = 'Other')") == ["Subset A", "Subset C's"]
    assert names("Name = 'Subset C\\'s'") == ["Subset C's"]
    assert names(
        f"CloseDate = 2031-06-30 AND CreatedDate > {(NOW - dt.timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    ) == ["Subset A", "Subset B", "Subset C's"]
    assert len(ids) == 3
    limited = sf.query("SELECT Name FROM Opportunity WHERE Name LIKE 'Subset%' ORDER BY Name DESC LIMIT 2")
    assert limited["totalSize"] == 2 and [r["Name"] for r in limited["records"]] == ["Subset C's", "Subset B"]


def test_get_updated_and_get_deleted_with_timezone_aware_datetimes(emulator, sf):
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    # Both calls cover whole minutes up to the current one, so the changes are dated back.
    [contact] = emulator.create("Contact", {"LastName": "Updated"}, backdate_seconds=120)
    [gone] = emulator.create("Contact", {"LastName": "Gone"}, backdate_seconds=120)
    [recent] = emulator.create("Contact", {"LastName": "This minute"})
    emulator.delete("Contact", gone, backdate_seconds=61)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    updated = sf.Contact.updated(start, end)
    assert recent not in updated["ids"]
    assert updated["latestDateCovered"] <= dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:00.000+0000")
    assert set(updated) == {"ids", "latestDateCovered"}
    assert contact in updated["ids"] and gone not in updated["ids"]
    assert updated["latestDateCovered"].endswith(":00.000+0000")
    deleted = sf.Contact.deleted(start, end + dt.timedelta(minutes=2))
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert gone in [d["id"] for d in deleted["deletedRecords"]]
    assert set(deleted["deletedRecords"][0]) == {"id", "deletedDate"}


def test_get_updated_refuses_a_window_inside_one_minute_and_too_old(sf):
    moment = dt.datetime.now(dt.UTC).replace(second=10)
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Contact.updated(moment, moment.replace(second=50))
    assert error.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Contact.deleted(moment - dt.timedelta(days=20), moment)
    assert error.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_limits_and_the_limit_header_on_every_response(emulator, sf):
    before = emulator.api_calls()
    sf.query("SELECT Id FROM User")
    used, total = sf.api_usage["api-usage"]
    assert used == before + 1
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == total
    assert limits["DailyApiRequests"]["Remaining"] == total - (before + 2)
    assert {"DailyBulkApiBatches", "DailyBulkV2QueryJobs"} <= set(limits)


def test_composite_runs_several_queries_as_one_call(emulator, sf):
    before = emulator.api_calls()
    requests = [
        {
            "method": "GET",
            "url": f"/services/data/v59.0/queryAll/?q=SELECT+Id+FROM+{name}+LIMIT+1",
            "referenceId": name,
        }
        for name in ("Contact", "Lead", "Opportunity", "OpportunityContactRole")
    ]
    requests.append(
        {
            "method": "GET",
            "url": "/services/data/v59.0/sobjects/Opportunity/describe",
            "referenceId": "describe",
        }
    )
    requests.append(
        {"method": "GET", "url": "/services/data/v59.0/query/?q=SELECT+Nope+FROM+Lead", "referenceId": "bad"}
    )
    result = sf.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": requests})
    assert emulator.api_calls() == before + 1
    by_reference = {r["referenceId"]: r for r in result["compositeResponse"]}
    assert set(by_reference["Contact"]) == {"body", "httpHeaders", "httpStatusCode", "referenceId"}
    assert by_reference["Opportunity"]["httpStatusCode"] == 200
    assert "totalSize" in by_reference["Lead"]["body"]
    assert by_reference["describe"]["body"]["name"] == "Opportunity"
    assert by_reference["bad"]["httpStatusCode"] == 400
    assert by_reference["bad"]["body"][0]["errorCode"] == "INVALID_FIELD"


def test_composite_refuses_more_than_five_queries(sf):
    requests = [
        {"method": "GET", "url": "/services/data/v59.0/query/?q=SELECT+Id+FROM+User", "referenceId": f"q{n}"}
        for n in range(6)
    ]
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json={"compositeRequest": requests})


def test_bulk2_query_all_pages_csv_with_locators(emulator, sf):
    ids = emulator.create(
        "Lead", *[{"LastName": f'Bulk, "{n}"', "Company": "Bulk Co", "Title": None} for n in range(25)]
    )
    emulator.delete("Lead", ids[0])
    pages = list(
        sf.bulk2.Lead.query_all(
            "SELECT Id, LastName, Title, IsDeleted, SystemModstamp FROM Lead WHERE Company = 'Bulk Co'",
            max_records=10,
            wait=0.05,
        )
    )
    assert len(pages) == 3
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert sorted(r["Id"] for r in rows) == sorted(ids)
    deleted = next(r for r in rows if r["Id"] == ids[0])
    assert deleted["IsDeleted"] == "true"
    assert deleted["Title"] == ""
    assert deleted["SystemModstamp"].endswith("Z")
    assert rows[1]["LastName"].startswith('Bulk, "')
    assert pages[0].splitlines()[0] == '"Id","LastName","Title","IsDeleted","SystemModstamp"'


def test_bulk2_job_can_stay_in_progress_for_some_polls(emulator, sf):
    # Its own rows: under pytest-xdist the test that made 'Bulk Co' may run in another process.
    emulator.create("Lead", *[{"LastName": f"Polled {n}", "Company": "Polled Co"} for n in range(24)])
    emulator.faults(bulk_in_progress_polls=2)
    pages = list(sf.bulk2.Lead.query("SELECT Id FROM Lead WHERE Company = 'Polled Co'", wait=0.05))
    assert sum(len(p.splitlines()) - 1 for p in pages) == 24


def test_bulk2_results_before_completion_are_refused(emulator, sf):
    emulator.faults(bulk_in_progress_polls=5)
    job = sf.restful("jobs/query", method="POST", json={"operation": "query", "query": "SELECT Id FROM Lead"})
    assert job["state"] == "UploadComplete" and job["id"].startswith("750")
    response = sf.session.get(f"{sf.base_url}jobs/query/{job['id']}/results", headers=sf.headers)
    assert response.status_code == 412
    assert response.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"


def test_bulk2_refuses_compound_fields(sf):
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.restful(
            "jobs/query",
            method="POST",
            json={"operation": "query", "query": "SELECT Id, MailingAddress FROM Contact"},
        )
    assert "Selecting compound data not supported in Bulk Query" in error.value.content[0]["message"]


def test_get_deleted_refuses_a_window_of_exactly_one_minute(sf):
    """Salesforce documents that getDeleted's start must be *more than* one minute before end."""
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Contact.deleted(start, start + dt.timedelta(minutes=1))
    assert error.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    assert "deletedRecords" in sf.Contact.deleted(start, start + dt.timedelta(minutes=2))
