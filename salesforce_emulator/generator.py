"""Generate a realistic org: accounts, contacts and leads, opportunities with believable stages,
amounts and close dates, and 0 to 5 contact roles each (some with none, some pointing at contacts
the integration user cannot see). Fast enough for a million opportunities in minutes: Faker fills
small pools of names once, records are combined from them and inserted in batches."""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

from faker import Faker

from .schema import (
    CONTACT_ROLES,
    INDUSTRIES,
    LEAD_SOURCES,
    LEAD_STATUSES,
    OPPORTUNITY_STAGES,
    OPPORTUNITY_TYPES,
)
from .store import INTEGRATION_USER_ID, Store
from .timeutil import format_datetime, org_now

BATCH = 20_000
HIDDEN_CONTACT_SHARE = 0.02
# Weights of the stages in a living pipeline: many early, a good share closed.
STAGE_WEIGHTS = [14, 10, 9, 8, 7, 6, 7, 6, 18, 15]
ROLE_COUNT_WEIGHTS = [10, 17, 22, 24, 15, 12]  # 0..5 roles per opportunity, 2.5 on average
# The custom Opportunity fields a real org carries, for the demo org (`--demo-fields`): the
# README's examples segment by them.
DEMO_OPPORTUNITY_FIELDS: list[dict[str, Any]] = [
    {"name": "Region__c", "type": "picklist", "label": "Region", "values": ["EMEA", "AMER", "APAC", "LATAM"]},
    {
        "name": "Segment__c",
        "type": "picklist",
        "label": "Segment",
        "values": ["Enterprise", "Mid-Market", "SMB"],
    },
    {"name": "Seats__c", "type": "double", "label": "Seats", "precision": 18, "scale": 0},
    {"name": "Strategic__c", "type": "boolean", "label": "Strategic Account"},
    {"name": "Renewal_Date__c", "type": "date", "label": "Renewal Date"},
]
REGION_WEIGHTS = [30, 40, 20, 10]
SEGMENT_WEIGHTS = [20, 35, 45]


class Pools:
    def __init__(self, faker: Faker) -> None:
        self.first_names = [faker.first_name() for _ in range(1500)]
        self.last_names = [faker.last_name() for _ in range(3000)]
        self.companies = [faker.company() for _ in range(2000)]
        self.titles = [faker.job()[:120] for _ in range(600)]
        self.cities = [faker.city() for _ in range(400)]
        self.countries = [faker.country()[:80] for _ in range(120)]
        self.domains = [faker.domain_name() for _ in range(800)]
        self.words = [faker.word() for _ in range(500)]


def generate_org(
    store: Store,
    *,
    opportunities: int,
    people: int | None = None,
    seed: int = 1,
    progress: Any = None,
    custom_fields: bool = False,
) -> dict[str, Any]:
    """Add `opportunities` opportunities and about as many people (80% contacts, 20% leads);
    with `custom_fields`, the opportunities also carry `DEMO_OPPORTUNITY_FIELDS`."""
    started = time.monotonic()
    if custom_fields:
        for definition in DEMO_OPPORTUNITY_FIELDS:
            store.add_custom_field("Opportunity", definition)
    rng = random.Random(seed)
    faker = Faker()
    faker.seed_instance(seed)
    pools = Pools(faker)
    people = opportunities if people is None else int(people)
    account_count = max(1, opportunities // 8)
    contact_count = max(1, int(people * 0.8))
    lead_count = max(0, people - contact_count)
    now = org_now() - dt.timedelta(seconds=1)

    def past_stamp() -> str:
        # Spread over the last 60 days so an initial load meets many date windows.
        return format_datetime(now - dt.timedelta(seconds=rng.random() * 60 * 86400))

    def audit(stamp: str) -> dict[str, Any]:
        return {
            "IsDeleted": False,
            "CreatedDate": stamp,
            "CreatedById": INTEGRATION_USER_ID,
            "LastModifiedDate": stamp,
            "LastModifiedById": INTEGRATION_USER_ID,
            "SystemModstamp": stamp,
            "OwnerId": INTEGRATION_USER_ID,
        }

    account_ids = store.new_ids("Account", account_count)
    account_names = {}
    for chunk in _chunks(account_ids):
        rows = []
        for account_id in chunk:
            name = f"{rng.choice(pools.companies)} {rng.choice(pools.words).title()}"
            account_names[account_id] = name
            rows.append(
                {
                    "Id": account_id,
                    "Name": name,
                    "Industry": rng.choice(INDUSTRIES),
                    "BillingCity": rng.choice(pools.cities),
                    "Type": "Customer - Direct",
                    **audit(past_stamp()),
                }
            )
        _insert(store, "Account", rows)

    contact_ids = store.new_ids("Contact", contact_count)
    hidden = {cid for cid in contact_ids if rng.random() < HIDDEN_CONTACT_SHARE}
    contact_account: dict[str, str] = {}
    for chunk in _chunks(contact_ids):
        rows = []
        for number, contact_id in enumerate(chunk):
            first, last = rng.choice(pools.first_names), rng.choice(pools.last_names)
            account_id = rng.choice(account_ids)
            contact_account[contact_id] = account_id
            rows.append(
                {
                    "Id": contact_id,
                    "AccountId": account_id,
                    "FirstName": first,
                    "LastName": last,
                    "Name": f"{first} {last}",
                    "Email": f"{first}.{last}.{contact_id[-6:]}@{rng.choice(pools.domains)}".lower(),
                    "Phone": f"+1 555 {rng.randrange(1000000):07d}",
                    "Title": rng.choice(pools.titles),
                    "LeadSource": rng.choice(LEAD_SOURCES),
                    "HasOptedOutOfEmail": number % 17 == 0,
                    "MailingCity": rng.choice(pools.cities),
                    "MailingCountry": rng.choice(pools.countries),
                    **audit(past_stamp()),
                }
            )
        _insert(store, "Contact", rows, hidden)
        if progress:
            progress("Contact", len(rows))

    for chunk in _chunks(store.new_ids("Lead", lead_count)):
        rows = []
        for lead_id in chunk:
            first, last = rng.choice(pools.first_names), rng.choice(pools.last_names)
            rows.append(
                {
                    "Id": lead_id,
                    "FirstName": first,
                    "LastName": last,
                    "Name": f"{first} {last}",
                    "Company": rng.choice(pools.companies),
                    "Email": f"{first}.{last}.{lead_id[-6:]}@{rng.choice(pools.domains)}".lower(),
                    "Title": rng.choice(pools.titles),
                    "Status": rng.choice(LEAD_STATUSES[:2]),
                    "LeadSource": rng.choice(LEAD_SOURCES),
                    "Industry": rng.choice(INDUSTRIES),
                    "IsConverted": False,
                    "HasOptedOutOfEmail": False,
                    "City": rng.choice(pools.cities),
                    **audit(past_stamp()),
                }
            )
        _insert(store, "Lead", rows)

    stages = [stage["value"] for stage in OPPORTUNITY_STAGES]
    today = dt.date.today()
    role_total = 0
    for chunk in _chunks(store.new_ids("Opportunity", opportunities)):
        opportunity_rows, role_rows = [], []
        for opportunity_id in chunk:
            stamp = past_stamp()
            account_id = rng.choice(account_ids)
            stage = rng.choices(stages, STAGE_WEIGHTS)[0]
            closed = stage.startswith("Closed")
            close_date = today + dt.timedelta(days=rng.randint(-300, -1) if closed else rng.randint(1, 240))
            record: dict[str, Any] = {
                "Id": opportunity_id,
                "AccountId": account_id,
                "Name": f"{account_names[account_id]} - {rng.choice(pools.words).title()} {rng.choice(['Renewal', 'Expansion', 'Pilot', 'Platform', 'Services'])}",
                "StageName": stage,
                "Amount": float(round(rng.lognormvariate(9.6, 1.0), -2) or 500.0),
                "CloseDate": close_date.isoformat(),
                "Type": rng.choice(OPPORTUNITY_TYPES),
                "LeadSource": rng.choice(LEAD_SOURCES),
                "HasOpportunityLineItem": False,
                "IsPrivate": False,
                "NextStep": None
                if closed
                else rng.choice(["Send proposal", "Demo", "Security review", "Legal review", None]),
                **audit(stamp),
            }
            if custom_fields:
                record.update(_demo_values(rng, close_date, stage))
            store.derive_fields("Opportunity", record, {"StageName"}, stamp)
            opportunity_rows.append(record)
            role_count = rng.choices(range(6), ROLE_COUNT_WEIGHTS)[0]
            if role_count:
                role_ids = store.new_ids("OpportunityContactRole", role_count)
                for index, role_id in enumerate(role_ids):
                    role_stamp = stamp  # roles are created with their opportunity
                    role_rows.append(
                        {
                            "Id": role_id,
                            "OpportunityId": opportunity_id,
                            "ContactId": rng.choice(contact_ids),
                            "Role": rng.choice(CONTACT_ROLES),
                            "IsPrimary": index == 0,
                            "IsDeleted": False,
                            "CreatedDate": role_stamp,
                            "CreatedById": INTEGRATION_USER_ID,
                            "LastModifiedDate": role_stamp,
                            "LastModifiedById": INTEGRATION_USER_ID,
                            "SystemModstamp": role_stamp,
                        }
                    )
        _insert(store, "Opportunity", opportunity_rows)
        _insert(store, "OpportunityContactRole", role_rows)
        role_total += len(role_rows)
        if progress:
            progress("Opportunity", len(opportunity_rows))
    return {
        "accounts": account_count,
        "contacts": contact_count,
        "hidden_contacts": len(hidden),
        "leads": lead_count,
        "opportunities": opportunities,
        "contact_roles": role_total,
        "seconds": round(time.monotonic() - started, 2),
    }


def _demo_values(rng: random.Random, close_date: dt.date, stage: str) -> dict[str, Any]:
    segment = rng.choices(["Enterprise", "Mid-Market", "SMB"], SEGMENT_WEIGHTS)[0]
    seats = {"Enterprise": 500, "Mid-Market": 80, "SMB": 10}[segment]
    return {
        "Region__c": rng.choices(["EMEA", "AMER", "APAC", "LATAM"], REGION_WEIGHTS)[0],
        "Segment__c": segment,
        "Seats__c": float(max(1, round(rng.lognormvariate(0, 0.6) * seats))),
        "Strategic__c": segment == "Enterprise" and rng.random() < 0.4,
        "Renewal_Date__c": (close_date + dt.timedelta(days=365)).isoformat()
        if stage == "Closed Won"
        else None,
    }


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[start : start + BATCH] for start in range(0, len(items), BATCH)]


def _insert(store: Store, sobject: str, rows: list[dict[str, Any]], hidden: set[str] | None = None) -> None:
    if rows:
        with store.transaction():
            store.insert_many(sobject, rows, hidden_ids=hidden)
