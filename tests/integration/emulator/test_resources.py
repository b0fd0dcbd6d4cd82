"""P10 (part): the resource indexes and `limits/recordCount`, as Salesforce serves them."""

from __future__ import annotations

import pytest
import requests


def test_the_versions_and_the_version_resource_index(emulator, sf):
    versions = requests.get(
        f"{emulator.instance_url}/services/data/", verify=str(emulator.ca_file), timeout=30
    ).json()
    assert any(v["version"] == "59.0" and v["url"] == "/services/data/v59.0" for v in versions)
    index = sf.restful("")
    for name in ("sobjects", "query", "queryAll", "limits", "composite"):
        assert index[name] == f"/services/data/v59.0/{name}"


def test_record_counts_for_the_objects_asked_and_unknown_names_left_out(emulator, sf):
    counts = sf.restful("limits/recordCount", params={"sObjects": "Contact,Opportunity,NoSuchThing__c"})
    names = [entry["name"] for entry in counts["sObjects"]]
    assert names == ["Contact", "Opportunity"]
    live = {name: len(emulator.records(name)) for name in names}
    assert {e["name"]: e["count"] for e in counts["sObjects"]} == live
    everything = sf.restful("limits/recordCount")["sObjects"]
    assert {"Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole"} <= {
        e["name"] for e in everything
    }


@pytest.mark.parametrize("start", ["2026-11-28T10:00:00", "2026-11-28T10:00:00%3A", "yesterday", ""])
def test_a_naive_or_malformed_replication_date_gets_salesforces_error_code(emulator, sf, start):
    response = requests.get(
        f"{emulator.instance_url}/services/data/v59.0/sobjects/Contact/updated/",
        params={"start": start, "end": "2026-11-28T12:00:00+00:00"},
        headers={"Authorization": f"Bearer {sf.session_id}"},
        verify=str(emulator.ca_file),
        timeout=30,
    )
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == "INVALID_REPLICATION_DATE"
    assert "Error" not in error["message"] and "time zone" in error["message"]


def test_deleting_a_contact_or_an_opportunity_takes_its_roles_to_the_recycle_bin_and_back(emulator, sf):
    [contact] = emulator.create("Contact", {"LastName": "Cascade"})
    [deal] = emulator.create(
        "Opportunity", {"Name": "Cascade", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [role] = emulator.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact})

    def role_state() -> bool | None:
        rows = sf.query_all(
            f"SELECT Id, IsDeleted FROM OpportunityContactRole WHERE Id = '{role}'", include_deleted=True
        )
        return rows["records"][0]["IsDeleted"] if rows["records"] else None

    emulator.delete("Contact", contact)
    assert role_state() is True  # in the recycle bin with its contact
    emulator.undelete("Contact", contact)
    assert role_state() is False
    emulator.delete("Opportunity", deal)
    emulator.delete("Contact", contact)
    emulator.undelete("Contact", contact)
    assert role_state() is True  # its opportunity is still deleted: it stays in the bin
    emulator.undelete("Opportunity", deal)
    assert role_state() is False
