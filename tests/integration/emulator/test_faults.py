"""Every fault the emulator injects, produced the way Salesforce produces it."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

pytestmark = pytest.mark.integration


def test_request_limit_exceeded_once_the_daily_limit_is_used(emulator, sf):
    used = emulator.api_calls()
    emulator.faults(api_usage={"max": used + 1})
    try:
        sf.query("SELECT Id FROM User")  # the last call allowed
        with pytest.raises(SalesforceRefusedRequest) as error:
            sf.query("SELECT Id FROM User")
        assert error.value.status == 403
        assert error.value.content == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
    finally:
        emulator.faults(api_usage={"max": 100_000})


def test_an_injected_request_limit_error(emulator, sf):
    emulator.faults(
        error={
            "status": 403,
            "error_code": "REQUEST_LIMIT_EXCEEDED",
            "message": "TotalRequests Limit exceeded.",
            "times": 1,
        }
    )
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM User")
    sf.query("SELECT Id FROM User")


@pytest.mark.parametrize("status", [500, 502, 503, 420, 429])
def test_server_errors_n_times_then_recovery(emulator, sf, status):
    emulator.faults(
        error={
            "status": status,
            "error_code": "SERVER_UNAVAILABLE" if status >= 500 else None,
            "message": "Server unavailable",
            "times": 2,
        }
    )
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError) as error:
            sf.query("SELECT Id FROM User")
        assert error.value.status == status
    assert sf.query("SELECT Id FROM User")["totalSize"] >= 1


def test_errors_can_target_one_resource(emulator, sf):
    emulator.faults(
        error={
            "status": 503,
            "error_code": "SERVER_UNAVAILABLE",
            "message": "busy",
            "times": 1,
            "path_contains": "/limits",
        }
    )
    sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceGeneralError):
        sf.limits()


def test_slow_responses(emulator, sf):
    emulator.faults(slow={"seconds": 1.0, "times": 1})
    started = time.monotonic()
    sf.query("SELECT Id FROM User")
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    sf.query("SELECT Id FROM User")
    assert time.monotonic() - started < 1.0


def test_query_timeout_for_wide_windows(emulator, sf):
    emulator.faults(query_timeout_days=7)
    now = dt.datetime.now(dt.UTC)
    narrow = f"SELECT Id FROM Opportunity WHERE SystemModstamp > {(now - dt.timedelta(days=3)).strftime('%Y-%m-%dT%H:%M:%SZ')} AND SystemModstamp <= {now.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    sf.query(narrow)
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query(
            f"SELECT Id FROM Opportunity WHERE SystemModstamp > {(now - dt.timedelta(days=30)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
    assert error.value.content == [
        {"message": "Your query request was running for too long.", "errorCode": "QUERY_TIMEOUT"}
    ]
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id FROM Opportunity")


def _window(days: float) -> str:
    now = dt.datetime.now(dt.UTC)
    start = (now - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"WHERE SystemModstamp > {start} AND SystemModstamp <= {now.strftime('%Y-%m-%dT%H:%M:%SZ')}"


@pytest.mark.parametrize("fault", ["bulk_query_timeout_days", "query_timeout_days"])
def test_a_bulk_job_over_a_wide_window_fails_with_query_timeout(emulator, sf, fault):
    """The job is accepted, then ends Failed with QUERY_TIMEOUT in its errorMessage (as a query
    that ran too long does); a narrower window completes. `bulk_query_timeout_days` times out
    Bulk jobs only, so the REST query of the same window still answers."""
    emulator.faults(**{fault: 7})
    wide = f"SELECT Id FROM Opportunity {_window(30)}"
    job = sf.restful("jobs/query", method="POST", json={"operation": "queryAll", "query": wide})
    assert job["state"] == "UploadComplete"
    polled = sf.restful(f"jobs/query/{job['id']}")
    assert polled["state"] == "Failed"
    assert polled["errorMessage"] == "QUERY_TIMEOUT: Your query request was running for too long."
    response = sf.session.get(f"{sf.base_url}jobs/query/{job['id']}/results", headers=sf.headers)
    assert response.status_code == 412
    with pytest.raises(SalesforceOperationError, match="QUERY_TIMEOUT"):
        list(sf.bulk2.Opportunity.query_all(wide, wait=0.05))
    list(sf.bulk2.Opportunity.query_all(f"SELECT Id FROM Opportunity {_window(3)}", wait=0.05))
    if fault == "bulk_query_timeout_days":
        sf.query(wide)
    else:
        with pytest.raises(SalesforceMalformedRequest):
            sf.query(wide)


def test_a_connection_dropped_mid_page(emulator, sf):
    emulator.create("Lead", *[{"LastName": f"Drop {n}", "Company": "Drop Co"} for n in range(5)])
    emulator.faults(page_size=2)
    first = sf.query("SELECT Id FROM Lead WHERE Company = 'Drop Co'")
    emulator.faults(drop_connection={"times": 1, "path_contains": "/query/"})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    # The same page again works: the cursor was not lost.
    again = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert len(again["records"]) == 2


def test_expired_sessions(emulator, sf):
    emulator.faults(expire_sessions=True)
    with pytest.raises(SalesforceExpiredSession):
        sf.limits()


def test_late_commits_appear_with_an_older_system_modstamp(emulator, sf):
    [early] = emulator.create(
        "Opportunity", {"Name": "On time", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    reader_upper = sf.query(f"SELECT SystemModstamp FROM Opportunity WHERE Id = '{early}'")["records"][0][
        "SystemModstamp"
    ]
    # Committed after a reader's window ended at `reader_upper`, yet dated inside that window.
    [late] = emulator.create(
        "Opportunity",
        {"Name": "Late", "StageName": "Prospecting", "CloseDate": "2031-01-01"},
        backdate_seconds=30,
    )
    stamp = sf.query(f"SELECT SystemModstamp FROM Opportunity WHERE Id = '{late}'")["records"][0][
        "SystemModstamp"
    ]
    assert stamp < reader_upper
    window = sf.query(
        f"SELECT Id FROM Opportunity WHERE SystemModstamp <= {reader_upper.replace('+0000', 'Z')} AND Id = '{late}'"
    )
    assert window["totalSize"] == 1


def test_many_rows_share_one_system_modstamp_across_a_page_boundary(emulator, sf):
    ids = emulator.create(
        "Contact", *[{"LastName": f"Tied {n}", "Department": "Tied"} for n in range(9)], same_modstamp=True
    )
    emulator.faults(page_size=4)
    rows = list(
        sf.query_all_iter(
            "SELECT Id, SystemModstamp FROM Contact WHERE Department = 'Tied' ORDER BY SystemModstamp ASC, Id ASC"
        )
    )
    assert len({r["SystemModstamp"] for r in rows}) == 1
    assert sorted(r["Id"] for r in rows) == sorted(ids)
    assert len(rows) == 9  # paged 4 + 4 + 1 without losing or repeating a tied row
