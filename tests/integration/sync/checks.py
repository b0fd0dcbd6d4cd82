"""Compare OppSync's database with the emulated org, value by value (and as a checksum)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

from django.utils import timezone

from opportunities.models import (
    Activity,
    ActivityType,
    ContactRole,
    FieldDefinition,
    Opportunity,
    SyncCycle,
    SyncLease,
    SyncStatus,
)
from opportunities.sync.apply import CONTACT_COLUMNS, LEAD_COLUMNS, NOT_STORED, OPPORTUNITY_COLUMNS
from opportunities.sync.service import sync_cycle_run
from people.models import Person
from tests.processes import wait_until

SKIPPED_TYPES = {"address", "location", "base64"}


def canonical(field_type: str, value: Any) -> Any:
    """One spelling for a value, whether it came from the org's JSON or OppSync's columns."""
    if value is None or value == "":
        return None
    if field_type == "boolean":
        return bool(value)
    if field_type in ("double", "currency", "percent", "int", "long"):
        return str(Decimal(str(value)).normalize())
    if field_type == "datetime":
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    if field_type == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]
    return str(value)


def _types(sobject: str) -> dict[str, str]:
    return {
        d.api_name: d.field_type
        for d in FieldDefinition.objects.filter(sobject=sobject, is_active=True)
        if d.field_type not in SKIPPED_TYPES and d.api_name not in NOT_STORED
    }


def org_snapshot(org) -> dict[str, dict[str, dict[str, Any]]]:
    """What OppSync should hold, from the org: visible rows, synced fields, canonical values."""
    snapshot: dict[str, dict[str, dict[str, Any]]] = {}
    accounts = {a["Id"]: a.get("Name") for a in org.records("Account")}
    for sobject in ("Opportunity", "OpportunityContactRole", "Contact", "Lead"):
        types = _types(sobject)
        rows = {}
        for record in org.records(sobject, include_deleted=True):
            if not record.pop("_visible"):
                continue
            values = {name: canonical(kind, record.get(name)) for name, kind in types.items()}
            values["IsDeleted"] = bool(record.get("IsDeleted"))
            if sobject in ("Opportunity", "Contact") and "AccountId" in types:
                values["Account.Name"] = canonical("string", accounts.get(record.get("AccountId")))
            rows[record["Id"]] = values
        snapshot[sobject] = rows
    return snapshot


def local_snapshot() -> dict[str, dict[str, dict[str, Any]]]:
    snapshot: dict[str, dict[str, dict[str, Any]]] = {}
    types = _types("Opportunity")
    reverse = {column: api for api, column in OPPORTUNITY_COLUMNS.items()}
    rows = {}
    for opportunity in Opportunity.objects.all():
        values = {
            name: canonical(kind, opportunity.custom_fields.get(name))
            for name, kind in types.items()
            if name not in OPPORTUNITY_COLUMNS
        }
        for column, api in reverse.items():
            if api in types:
                values[api] = canonical(types[api], getattr(opportunity, column))
        values["IsDeleted"] = opportunity.is_deleted
        if "AccountId" in types:
            values["Account.Name"] = canonical("string", opportunity.account_name)
        rows[opportunity.sf_id] = values
    snapshot["Opportunity"] = rows
    types = _types("OpportunityContactRole")
    snapshot["OpportunityContactRole"] = {
        role.sf_id: {
            **{name: canonical(kind, role.custom_fields.get(name)) for name, kind in types.items()},
            "OpportunityId": role.sf_opportunity_id,
            "ContactId": role.sf_contact_id or None,
            "Role": role.role or None,
            "IsPrimary": role.is_primary,
            "IsDeleted": role.is_deleted,
        }
        for role in ContactRole.objects.all()
    }
    for sobject, columns, key in (
        ("Contact", CONTACT_COLUMNS, "sf_contact_id"),
        ("Lead", LEAD_COLUMNS, "sf_lead_id"),
    ):
        types = _types(sobject)
        rows = {}
        for person in Person.objects.exclude(**{key: None}):
            if sobject == "Contact" and person.contact_system_modstamp is None:
                continue  # a converted lead waiting for its contact
            if sobject == "Lead" and person.contact_system_modstamp is not None:
                continue  # the contact's values won; compared as a contact
            values = {
                name: canonical(kind, person.custom_fields.get(name))
                for name, kind in types.items()
                if name not in columns
            }
            for api, column in columns.items():
                if api in types or api == "Account.Name":
                    values[api] = canonical(types.get(api, "string"), getattr(person, column))
            values["IsDeleted"] = person.is_deleted_in_salesforce
            rows[getattr(person, key)] = values
        snapshot[sobject] = rows
    return snapshot


def checksum(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()


def assert_database_equals_org(org, *, before_getdeleted: bool = False) -> None:
    """Value by value. `before_getdeleted`: compare before any reconciling cycle, when roles hard
    deleted in the last minute cannot be known yet (only getDeleted's whole minutes or the id
    reconcile see them); every other row must already be right, so no lost row is masked."""
    expected, actual = org_snapshot(org), local_snapshot()
    # Hard-deleted roles are tombstones locally and absent in the org: compare live roles only.
    expected_roles = expected["OpportunityContactRole"]
    actual["OpportunityContactRole"] = {
        k: v
        for k, v in actual["OpportunityContactRole"].items()
        if k in expected_roles or (not v["IsDeleted"] and not before_getdeleted)
    }
    # Converted leads whose person is the contact's are compared as contacts.
    expected["Lead"] = {
        k: v for k, v in expected["Lead"].items() if k in actual["Lead"] or not v.get("ConvertedContactId")
    }
    for sobject in expected:
        missing = sorted(set(expected[sobject]) - set(actual[sobject]))
        extra = sorted(set(actual[sobject]) - set(expected[sobject]))
        assert not missing, f"{sobject}: {len(missing)} rows missing in OppSync, e.g. {missing[:3]}"
        assert not extra, f"{sobject}: {len(extra)} rows OppSync has that the org has not, e.g. {extra[:3]}"
        for record_id, values in expected[sobject].items():
            if sobject in ("Contact", "Lead") and values["IsDeleted"]:
                assert actual[sobject][record_id]["IsDeleted"], (
                    f"{sobject} {record_id} should be flagged deleted"
                )
                continue
            differences = {
                k: (v, actual[sobject][record_id].get(k))
                for k, v in values.items()
                if actual[sobject][record_id].get(k) != v
            }
            assert not differences, f"{sobject} {record_id} differs (org, OppSync): {differences}"
    assert checksum(expected) == checksum(actual)
    assert_totals_current()


def activity_keys() -> list[tuple]:
    """Activities as comparable tuples, for "exactly the expected ones" and "nothing twice"."""
    return sorted(
        (
            a.activity_type,
            a.person.sf_contact_id or a.person.sf_lead_id,
            a.opportunity.sf_id if a.opportunity else None,
            a.field,
            json.dumps(a.previous_value),
            json.dumps(a.new_value),
            a.sf_contact_role_id,
            a.is_initial_load,
        )
        for a in Activity.objects.select_related("person", "opportunity")
    )


def expected_opportunity_totals() -> dict[int, tuple[Any, ...]]:
    """Every person's totals recomputed in Python from the roles and opportunities, as
    PersonOpportunityTotals rows: (count, amount, expected revenue) for all, open and won ones."""
    live = {o.pk: o for o in Opportunity.objects.filter(is_deleted=False)}
    pairs = {
        (role.person_id, role.opportunity_id)
        for role in ContactRole.objects.filter(is_deleted=False, person__isnull=False)
        if role.opportunity_id in live
    }
    totals: dict[int, list[Any]] = {}
    for person_id, opportunity_id in pairs:
        assert person_id is not None
        opportunity = live[opportunity_id]
        row = totals.setdefault(person_id, [0, Decimal(0), Decimal(0)] * 3)
        for offset, selected in ((0, True), (3, not opportunity.is_closed), (6, opportunity.is_won)):
            if selected:
                row[offset] += 1
                row[offset + 1] += opportunity.amount or 0
                row[offset + 2] += opportunity.expected_revenue or 0
    return {person_id: tuple(row) for person_id, row in totals.items()}


def stored_opportunity_totals() -> dict[int, tuple[Any, ...]]:
    from opportunities.models import PersonOpportunityTotals

    prefixes = ("", "open_", "won_")
    names = [
        f"{p}{t}"
        for p in prefixes
        for t in ("number_of_optys", "total_opty_amount", "total_opty_expected_revenue")
    ]
    return {
        row[0]: tuple(row[1:]) for row in PersonOpportunityTotals.objects.values_list("person_id", *names)
    }


# The picklist fields the sync tests' totals rows cover (set before each test's first cycle):
# standard ones, and one a test adds to the org.
COVERED_PICKLISTS = ["ForecastCategoryName", "LeadSource", "Region__c", "StageName", "Type"]


def expected_person_facts() -> dict[int, tuple[dict[str, bool], Any, Any]]:
    """Every person's covered picklist values and latest Added / Removed times, recomputed in
    Python from the roles, opportunities and activities: (picklist_values, added, removed)."""
    from opportunities.models import TotalsCoverage
    from opportunities.totals import picklist_key

    # Those the rows cover now: a worker's beat may have rebuilt them with describe's fields.
    covered = TotalsCoverage.objects.get(pk=1).picklist_fields
    live = {o.pk: o for o in Opportunity.objects.filter(is_deleted=False)}
    facts: dict[int, tuple[dict[str, bool], list[Any]]] = {}
    pairs = {
        (role.person_id, role.opportunity_id)
        for role in ContactRole.objects.filter(is_deleted=False, person__isnull=False)
        if role.opportunity_id in live
    }
    for person_id, opportunity_id in pairs:
        assert person_id is not None
        opportunity = live[opportunity_id]
        values, _ = facts.setdefault(person_id, ({}, [None, None]))
        for name in covered:
            column = Opportunity.SALESFORCE_COLUMNS.get(name)
            value = getattr(opportunity, column) if column else opportunity.custom_fields.get(name)
            if value:
                values[picklist_key(name, value)] = True
    kinds = [ActivityType.ADDED_TO_OPPORTUNITY, ActivityType.REMOVED_FROM_OPPORTUNITY]
    for activity in Activity.objects.filter(activity_type__in=kinds, opportunity__in=list(live)):
        _, latest = facts.setdefault(activity.person_id, ({}, [None, None]))
        slot = kinds.index(ActivityType(activity.activity_type))
        if latest[slot] is None or activity.occurred_at > latest[slot]:
            latest[slot] = activity.occurred_at
    return {person_id: (values, *latest) for person_id, (values, latest) in facts.items()}


def cover_picklists_and_activity_times() -> None:
    """The totals rows hold COVERED_PICKLISTS and the activity times from now on."""
    from opportunities.models import TotalsCoverage

    TotalsCoverage.objects.update_or_create(
        pk=1, defaults={"picklist_fields": COVERED_PICKLISTS, "activity_times": True}
    )


def assert_totals_current() -> None:
    """The sync-maintained totals equal a recomputation from scratch; so do the picklist values
    and activity times a smart list reads from the same rows."""
    from opportunities.models import PersonOpportunityTotals

    expected = expected_opportunity_totals()
    stored = stored_opportunity_totals()
    # A person with activities but no live opportunity has a row of zeros.
    zeros = (0, Decimal(0), Decimal(0)) * 3
    assert {k: v for k, v in stored.items() if v != zeros or k in expected} == expected
    facts = {
        person_id: (values, added, removed)
        for person_id, values, added, removed in PersonOpportunityTotals.objects.values_list(
            "person_id", "picklist_values", "last_added_at", "last_removed_at"
        )
    }
    assert facts == expected_person_facts()


def wait_for_stopped_workers_lease() -> None:
    """A worker stopped (SIGKILL after 20 s of SIGTERM) while a cycle runs leaves its lease to
    expire (five seconds in these workers); until then a cycle in the test process stands down."""
    wait_until(
        lambda: not SyncLease.objects.exclude(owner="").filter(expires_at__gt=timezone.now()).exists(),
        timeout=60,
        what="the stopped worker's sync lease to be released or to expire",
    )


def run_cycle(**options: Any) -> SyncCycle:
    """One sync cycle in the test process (never None: tests hold no other lease)."""
    cycle = sync_cycle_run(**options)
    assert cycle is not None
    return cycle


def ok_cycle(**options: Any) -> SyncCycle:
    """One sync cycle that must succeed."""
    cycle = run_cycle(**options)
    assert cycle.status == SyncStatus.SUCCEEDED, cycle.error_message
    return cycle
