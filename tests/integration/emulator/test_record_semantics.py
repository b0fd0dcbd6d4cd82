"""Record semantics of salesforce-api.md §6, and storage that survives a restart."""

from __future__ import annotations

import datetime as dt

import pytest

from salesforce_emulator.control import EmulatorProcess
from tests.processes import free_port

pytestmark = pytest.mark.integration

FIELDS = "Id, StageName, IsClosed, IsWon, Probability, ForecastCategory, ForecastCategoryName, Amount, ExpectedRevenue, IsDeleted, SystemModstamp, LastModifiedDate"


def _get(sf, sobject, record_id, fields=FIELDS, include_deleted=True):
    rows = sf.query(
        f"SELECT {fields} FROM {sobject} WHERE Id = '{record_id}'", include_deleted=include_deleted
    )["records"]
    return rows[0] if rows else None


def test_stage_drives_closed_won_probability_and_forecast(emulator, sf):
    [opportunity] = emulator.create(
        "Opportunity",
        {"Name": "Stages", "StageName": "Prospecting", "CloseDate": "2031-01-01", "Amount": 20000.0},
    )
    row = _get(sf, "Opportunity", opportunity)
    assert (row["IsClosed"], row["IsWon"], row["Probability"], row["ForecastCategory"]) == (
        False,
        False,
        10.0,
        "Pipeline",
    )
    assert row["ExpectedRevenue"] == 2000.0
    emulator.update("Opportunity", {"Id": opportunity, "StageName": "Closed Won"})
    won = _get(sf, "Opportunity", opportunity)
    assert (
        won["IsClosed"],
        won["IsWon"],
        won["Probability"],
        won["ForecastCategory"],
        won["ForecastCategoryName"],
    ) == (True, True, 100.0, "Closed", "Closed")
    assert won["ExpectedRevenue"] == 20000.0
    assert won["SystemModstamp"] > row["SystemModstamp"]
    emulator.update("Opportunity", {"Id": opportunity, "StageName": "Closed Lost"})
    lost = _get(sf, "Opportunity", opportunity)
    assert (lost["IsClosed"], lost["IsWon"], lost["Probability"], lost["ExpectedRevenue"]) == (
        True,
        False,
        0.0,
        0.0,
    )
    emulator.update(
        "Opportunity", {"Id": opportunity, "StageName": "Negotiation/Review", "Probability": 35.0}
    )
    custom = _get(sf, "Opportunity", opportunity)
    assert (custom["Probability"], custom["ExpectedRevenue"]) == (35.0, 7000.0)


def test_every_write_stamps_milliseconds_and_moves_forward(emulator, sf):
    [contact] = emulator.create("Contact", {"LastName": "Stamp"})
    first = _get(sf, "Contact", contact, "SystemModstamp, LastModifiedDate")
    emulator.update("Contact", {"Id": contact, "Title": "CEO"})
    second = _get(sf, "Contact", contact, "SystemModstamp, LastModifiedDate")
    assert second["SystemModstamp"] > first["SystemModstamp"]
    assert second["SystemModstamp"] == second["LastModifiedDate"]
    assert second["SystemModstamp"][19] == "." and second["SystemModstamp"][20:23].isdigit()


def test_soft_delete_undelete_and_purge(emulator, sf):
    [lead] = emulator.create("Lead", {"LastName": "Bin", "Company": "Bin Co"})
    before = _get(sf, "Lead", lead, "Id, SystemModstamp")
    emulator.delete("Lead", lead)
    assert _get(sf, "Lead", lead, "Id", include_deleted=False) is None
    tombstone = _get(sf, "Lead", lead, "Id, IsDeleted, SystemModstamp")
    assert tombstone["IsDeleted"] is True and tombstone["SystemModstamp"] > before["SystemModstamp"]
    emulator.undelete("Lead", lead)
    assert _get(sf, "Lead", lead, "Id, IsDeleted", include_deleted=False)["IsDeleted"] is False
    emulator.delete("Lead", lead)
    earliest = emulator.purge()
    assert _get(sf, "Lead", lead, "Id") is None  # gone from queryAll too
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    deleted = sf.Lead.deleted(start, dt.datetime.now(dt.UTC))
    assert deleted["earliestDateAvailable"] == earliest[:17] + "00.000+0000"
    assert lead not in [d["id"] for d in deleted["deletedRecords"]]


def test_a_contact_role_deleted_directly_is_a_hard_delete(emulator, sf):
    [contact] = emulator.create("Contact", {"LastName": "Role"})
    [opportunity] = emulator.create(
        "Opportunity", {"Name": "Roles", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [role] = emulator.create(
        "OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": contact, "Role": "Evaluator"}
    )
    emulator.delete("OpportunityContactRole", role, backdate_seconds=61)
    assert _get(sf, "OpportunityContactRole", role, "Id") is None  # not even queryAll sees it
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    deleted = sf.OpportunityContactRole.deleted(start, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert role in [d["id"] for d in deleted["deletedRecords"]]


def test_deleting_an_opportunity_soft_deletes_its_roles_and_undelete_restores_them(emulator, sf):
    [contact] = emulator.create("Contact", {"LastName": "Cascade"})
    [opportunity] = emulator.create(
        "Opportunity", {"Name": "Cascade", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [role] = emulator.create("OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": contact})
    emulator.delete("Opportunity", opportunity)
    row = _get(sf, "OpportunityContactRole", role, "Id, IsDeleted")
    assert row["IsDeleted"] is True
    emulator.undelete("Opportunity", opportunity)
    assert _get(sf, "OpportunityContactRole", role, "Id, IsDeleted")["IsDeleted"] is False


def test_one_primary_contact_role_per_opportunity(emulator, sf):
    [a, b] = emulator.create("Contact", {"LastName": "A"}, {"LastName": "B"})
    [opportunity] = emulator.create(
        "Opportunity", {"Name": "Primary", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [first] = emulator.create(
        "OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": a, "IsPrimary": True}
    )
    [second] = emulator.create(
        "OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": b, "IsPrimary": True}
    )
    assert _get(sf, "OpportunityContactRole", first, "Id, IsPrimary")["IsPrimary"] is False
    assert _get(sf, "OpportunityContactRole", second, "Id, IsPrimary")["IsPrimary"] is True


def test_lead_conversion(emulator, sf):
    [lead] = emulator.create(
        "Lead",
        {"FirstName": "Lee", "LastName": "Convert", "Company": "Convert Co", "Email": "lee@convert.example"},
    )
    result = emulator.convert_lead(lead)
    converted = _get(
        sf,
        "Lead",
        lead,
        "Id, IsConverted, ConvertedContactId, ConvertedAccountId, ConvertedOpportunityId, Status, IsDeleted",
        include_deleted=False,
    )
    assert converted["IsConverted"] is True and converted["IsDeleted"] is False  # converted leads stay
    assert converted["ConvertedContactId"] == result["contactId"]
    assert converted["Status"] == "Closed - Converted"
    contact = _get(sf, "Contact", result["contactId"], "Id, Email, AccountId")
    assert contact["Email"] == "lee@convert.example" and contact["AccountId"] == result["accountId"]
    roles = sf.query(
        f"SELECT Id, ContactId, IsPrimary FROM OpportunityContactRole WHERE OpportunityId = '{result['opportunityId']}'"
    )["records"]
    assert [(r["ContactId"], r["IsPrimary"]) for r in roles] == [(result["contactId"], True)]


def test_merging_contacts_soft_deletes_losers_and_moves_their_roles(emulator, sf):
    [master, loser] = emulator.create("Contact", {"LastName": "Master"}, {"LastName": "Loser"})
    [opportunity] = emulator.create(
        "Opportunity", {"Name": "Merge", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [role] = emulator.create("OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": loser})
    emulator.merge("Contact", master, loser)
    merged = _get(sf, "Contact", loser, "Id, IsDeleted, MasterRecordId")
    assert merged["IsDeleted"] is True and merged["MasterRecordId"] == master
    assert _get(sf, "OpportunityContactRole", role, "Id, ContactId")["ContactId"] == master


def test_hidden_contacts_are_invisible_but_roles_still_point_at_them(emulator, sf):
    [contact] = emulator.create("Contact", {"LastName": "Secret"})
    [opportunity] = emulator.create(
        "Opportunity", {"Name": "Secretive", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [role] = emulator.create("OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": contact})
    emulator.set_visible("Contact", [contact], False)
    assert _get(sf, "Contact", contact, "Id") is None
    assert _get(sf, "OpportunityContactRole", role, "Id, ContactId")["ContactId"] == contact
    emulator.set_visible("Contact", [contact], True)
    assert _get(sf, "Contact", contact, "Id")["Id"] == contact


def test_silent_values_do_not_bump_system_modstamp(emulator, sf):
    emulator.add_field("Opportunity", "Score__c", "double")
    [opportunity] = emulator.create(
        "Opportunity", {"Name": "Formula", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    before = _get(sf, "Opportunity", opportunity, "Id, Score__c, SystemModstamp")
    emulator.set_values_silently("Opportunity", "Score__c", {opportunity: 42.5})
    after = _get(sf, "Opportunity", opportunity, "Id, Score__c, SystemModstamp")
    assert after["Score__c"] == 42.5 and after["SystemModstamp"] == before["SystemModstamp"]


def test_the_generator_makes_a_realistic_org(emulator, sf):
    summary = emulator.generate(opportunities=300, people=200, seed=7)
    assert summary["opportunities"] == 300 and summary["contacts"] == 160 and summary["leads"] == 40
    assert 300 <= summary["contact_roles"] <= 5 * 300
    assert summary["hidden_contacts"] >= 1
    stages = {r["StageName"] for r in sf.query_all("SELECT StageName FROM Opportunity")["records"]}
    assert {"Prospecting", "Closed Won", "Closed Lost"} <= stages


def test_the_sales_team_changes_things(emulator):
    before = emulator.stats()["counts"]
    did = emulator.sales_team_act(times=30)
    assert len(did) == 30
    assert emulator.stats()["counts"] != before or any("stage" in d or "amount" in d for d in did)


def test_storage_survives_a_restart(tmp_path):
    process = EmulatorProcess(tmp_path / "org", free_port())
    control = process.start()
    [account] = control.create("Account", {"Name": "Durable"})
    process.stop()
    control = process.start()
    try:
        assert [r["Name"] for r in control.records("Account")] == ["Durable"]
        [second] = control.create("Account", {"Name": "After restart"})
        assert second != account  # ids never repeat
    finally:
        process.stop()
