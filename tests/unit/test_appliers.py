"""The appliers against an in-process fake of the boundary: pages of records as Salesforce's REST
API returns them, no emulator. Activity derivation, linking, merges and idempotence (P7 point 9)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from opportunities.models import Activity, ActivityType, ContactRole, PersonOpportunityTotals
from opportunities.salesforce.records import FieldInfo
from opportunities.sync import apply
from people.models import Person

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def _fields(**types: str) -> dict[str, FieldInfo]:
    return {
        name: FieldInfo(name=name, label=name, type=kind)
        for name, kind in {"IsDeleted": "boolean", **types}.items()
    }


OPPORTUNITY = _fields(Name="string", StageName="picklist", Amount="currency")
ROLE = _fields(OpportunityId="reference", ContactId="reference", Role="picklist", IsPrimary="boolean")
CONTACT = _fields(LastName="string", MasterRecordId="reference")


def stamp(minutes: int) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def ctx() -> apply.ApplyContext:
    return apply.ApplyContext(cycle=None, is_initial_load=False, counters=apply.Counters())


def opportunity(sf_id: str, minutes: int, **values: Any) -> dict[str, Any]:
    return {
        "Id": sf_id,
        "SystemModstamp": stamp(minutes),
        "IsDeleted": False,
        "Name": "Deal",
        "StageName": "Prospecting",
        "Amount": 100,
        **values,
    }


def role(sf_id: str, minutes: int, contact: str, **values: Any) -> dict[str, Any]:
    return {
        "Id": sf_id,
        "SystemModstamp": stamp(minutes),
        "IsDeleted": False,
        "OpportunityId": "006A",
        "ContactId": contact,
        "Role": "Buyer",
        "IsPrimary": False,
        **values,
    }


def contact(sf_id: str, minutes: int, **values: Any) -> dict[str, Any]:
    return {
        "Id": sf_id,
        "SystemModstamp": stamp(minutes),
        "IsDeleted": False,
        "LastName": sf_id,
        "MasterRecordId": None,
        **values,
    }


def kinds() -> list[tuple[str, str | None, str]]:
    return sorted(Activity.objects.values_list("activity_type", "person__sf_contact_id", "field"))


def test_activities_derive_from_what_changed_and_a_repeated_page_adds_nothing():
    apply.contacts_apply([contact("003A", 0), contact("003B", 0)], CONTACT, ctx())
    apply.opportunities_apply([opportunity("006A", 0)], OPPORTUNITY, ctx())
    page = [role("00KA", 1, "003A"), role("00KB", 1, "003B", Role="Evaluator")]
    apply.contact_roles_apply(page, ROLE, ctx())
    apply.contact_roles_apply(page, ROLE, ctx())  # the lookback reads it again
    assert kinds() == [("added_to_opportunity", "003A", ""), ("added_to_opportunity", "003B", "")]
    update = [opportunity("006A", 2, StageName="Negotiation", Amount=250)]
    apply.opportunities_apply(update, OPPORTUNITY, ctx())
    apply.opportunities_apply(update, OPPORTUNITY, ctx())
    updated = Activity.objects.filter(activity_type=ActivityType.OPPORTUNITY_UPDATED)
    assert sorted(updated.values_list("person__sf_contact_id", "field", "previous_value", "new_value")) == [
        ("003A", "Amount", 100, 250),
        ("003A", "StageName", "Prospecting", "Negotiation"),
        ("003B", "Amount", 100, 250),
        ("003B", "StageName", "Prospecting", "Negotiation"),
    ]
    apply.contact_roles_apply([role("00KB", 3, "003B", IsDeleted=True)], ROLE, ctx())
    removed = Activity.objects.get(activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY)
    assert (removed.person.sf_contact_id, removed.role, removed.occurred_at) == (
        "003B",
        "Evaluator",
        T0 + dt.timedelta(minutes=3),
    )
    totals = dict(PersonOpportunityTotals.objects.values_list("person__sf_contact_id", "total_opty_amount"))
    assert totals == {"003A": 250}


def test_a_role_waiting_for_its_contact_links_when_the_contact_arrives():
    apply.opportunities_apply([opportunity("006A", 0)], OPPORTUNITY, ctx())
    apply.contact_roles_apply([role("00KA", 1, "003A")], ROLE, ctx())
    assert ContactRole.objects.get().person is None and not Activity.objects.exists()
    apply.contacts_apply([contact("003A", 2)], CONTACT, ctx())
    assert ContactRole.objects.get().person == Person.objects.get(sf_contact_id="003A")
    assert kinds() == [("added_to_opportunity", "003A", "")]


def test_a_merge_moves_roles_and_history_without_a_removed_added_pair():
    apply.contacts_apply([contact("003M", 0), contact("003L", 0)], CONTACT, ctx())
    apply.opportunities_apply([opportunity("006A", 0)], OPPORTUNITY, ctx())
    apply.contact_roles_apply([role("00KA", 1, "003L")], ROLE, ctx())
    # Salesforce: the loser is deleted with MasterRecordId; its role now names the master.
    apply.contacts_apply([contact("003L", 2, IsDeleted=True, MasterRecordId="003M")], CONTACT, ctx())
    apply.contact_roles_apply([role("00KA", 2, "003M")], ROLE, ctx())
    assert ContactRole.objects.get().person.sf_contact_id == "003M"
    assert kinds() == [("added_to_opportunity", "003M", "")]
    loser = Person.objects.get(sf_contact_id="003L")
    assert loser.merged_into is not None and loser.merged_into.sf_contact_id == "003M"
    assert list(PersonOpportunityTotals.objects.values_list("person__sf_contact_id", flat=True)) == ["003M"]
