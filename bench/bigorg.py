"""A big synced org written straight into the database, for the page and smart-list benchmarks.

`generate()` fills people, opportunities (with three custom fields), contact roles and activities
with INSERT ... SELECT over a number sequence, in the database itself: a million people and five
million activities take minutes, not hours, on PostgreSQL and on SQLite alike. Values are spread by
multiplicative hashing of the row number, so every run builds the same org.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

CHUNK = 250_000
FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chris",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Paul",
    "Ashley",
    "Steven",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
]
SUFFIXES = [
    "",
    "son",
    "ley",
    "ton",
    "ford",
    "wood",
    "man",
    "er",
    "ell",
    "ard",
    "ick",
    "ing",
    "hurst",
    "worth",
    "field",
    "by",
    "s",
    "stone",
    "well",
    "more",
]
STAGES = [
    ("Prospecting", 10, False, False),
    ("Qualification", 20, False, False),
    ("Needs Analysis", 30, False, False),
    ("Proposal/Price Quote", 60, False, False),
    ("Negotiation/Review", 80, False, False),
    ("Closed Won", 100, True, True),
    ("Closed Lost", 0, True, False),
    ("Perception Analysis", 70, False, False),
]
LEAD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]
TYPES = [
    "New Customer",
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
]
ROLES = [
    "Decision Maker",
    "Economic Buyer",
    "Technical Buyer",
    "Evaluator",
    "Influencer",
    "Executive Sponsor",
]
REGIONS = ["EMEA", "AMER", "APAC", "LATAM"]
SEGMENTS = ["Enterprise", "Mid-Market", "SMB"]


@dataclass(frozen=True)
class BigOrgSize:
    people: int
    opportunities: int
    contact_roles: int
    activities: int

    @classmethod
    def scaled(cls, people: int) -> BigOrgSize:
        """The issue's proportions: as many opportunities as people, 2.5 roles and 5 activities each."""
        return cls(people, people, people * 5 // 2, people * 5)


class Dialect:
    """The few SQL pieces PostgreSQL and SQLite spell differently."""

    def __init__(self, vendor: str) -> None:
        self.pg = vendor == "postgresql"

    def seq(self, start: int, stop: int) -> str:
        if self.pg:
            return f"generate_series({start}::bigint, {stop}::bigint) AS s(n)"
        return f"(WITH RECURSIVE q(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM q WHERE n < {stop}) SELECT n FROM q) AS s"

    def sf_id(self, prefix: str, expr: str) -> str:
        if self.pg:
            return f"'{prefix}' || lpad(({expr})::text, 15, '0')"
        return f"'{prefix}' || printf('%015d', {expr})"

    def now_minus_minutes(self, expr: str) -> str:
        if self.pg:
            return f"(now() - ({expr}) * interval '1 minute')"
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ({expr}) || ' minutes')"

    def now_minus_minutes_plus_seconds(self, expr: str, seconds: str) -> str:
        if self.pg:
            return f"(now() - ({expr}) * interval '1 minute' + ({seconds}) * interval '1 second')"
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ({expr}) || ' minutes', '+' || ({seconds}) || ' seconds')"

    def date_minus_days(self, day: str, expr: str) -> str:
        if self.pg:
            return f"(date '{day}' - ({expr})::int)"
        return f"date('{day}', '-' || ({expr}) || ' days')"

    def now(self) -> str:
        return "now()" if self.pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"

    def json_object(self, *pairs: str) -> str:
        return f"{'jsonb_build_object' if self.pg else 'json_object'}({', '.join(pairs)})"

    def json_text(self, expr: str) -> str:
        return f"to_jsonb(({expr})::text)" if self.pg else f"json_quote({expr})"

    def true(self, condition: str) -> str:
        return f"({condition})"


def _case(expr: str, values: list[str]) -> str:
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE ({expr}) % {len(values)} {whens} END)"


def _lookup_tables(cursor) -> None:
    cursor.execute("DROP TABLE IF EXISTS bench_names")
    cursor.execute("CREATE TABLE bench_names (kind varchar(10), i integer, name varchar(80))")
    rows = [("first", i, n) for i, n in enumerate(FIRST_NAMES)]
    last = [f"{n}{s}" for s in SUFFIXES for n in LAST_NAMES]
    rows += [("last", i, n) for i, n in enumerate(last)]
    companies = [
        f"{a} {b}" for a in LAST_NAMES for b in ("Inc", "LLC", "Group", "Labs", "Partners", "Systems")
    ]
    rows += [("company", i, n) for i, n in enumerate(companies)]
    cursor.executemany("INSERT INTO bench_names (kind, i, name) VALUES (%s, %s, %s)", rows)
    cursor.execute("CREATE INDEX bench_names_idx ON bench_names (kind, i)")
    return None


def _field_definitions() -> None:
    from opportunities.models import FieldDefinition
    from opportunities.planner_statistics import custom_field_statistics_ensure

    now = timezone.now()
    specs = [
        ("Opportunity", "Name", "Name", "string", []),
        ("Opportunity", "StageName", "Stage", "picklist", [s[0] for s in STAGES]),
        ("Opportunity", "Amount", "Amount", "currency", []),
        ("Opportunity", "ExpectedRevenue", "Expected Amount", "currency", []),
        ("Opportunity", "Probability", "Probability (%)", "percent", []),
        ("Opportunity", "CloseDate", "Close Date", "date", []),
        ("Opportunity", "Type", "Opportunity Type", "picklist", TYPES),
        ("Opportunity", "LeadSource", "Lead Source", "picklist", LEAD_SOURCES),
        ("Opportunity", "IsClosed", "Closed", "boolean", []),
        ("Opportunity", "IsWon", "Won", "boolean", []),
        ("Opportunity", "Region__c", "Region", "picklist", REGIONS),
        ("Opportunity", "Segment__c", "Segment", "picklist", SEGMENTS),
        ("Opportunity", "Score__c", "Deal Score", "double", []),
        ("Contact", "LeadSource", "Lead Source", "picklist", LEAD_SOURCES),
        ("Lead", "LeadSource", "Lead Source", "picklist", LEAD_SOURCES),
        ("OpportunityContactRole", "Role", "Role", "picklist", ROLES),
        ("OpportunityContactRole", "IsPrimary", "Primary", "boolean", []),
    ]
    for sobject, api_name, label, field_type, values in specs:
        FieldDefinition.objects.update_or_create(
            sobject=sobject,
            api_name=api_name,
            defaults={
                "label": label,
                "field_type": field_type,
                "picklist_values": values,
                "is_custom": api_name.endswith("__c"),
                "first_seen_at": now,
                "last_seen_at": now,
            },
        )
    # What the field sync does for a new custom field; the ANALYZE at the end fills them.
    custom_field_statistics_ensure(
        (api_name, field_type) for sobject, api_name, _, field_type, _ in specs if sobject == "Opportunity"
    )


def _chunks(total: int) -> list[tuple[int, int]]:
    return [(start, min(start + CHUNK - 1, total)) for start in range(1, total + 1, CHUNK)]


def generate(size: BigOrgSize, *, report: Callable[[str], None] = print) -> dict[str, float]:
    """Empty the synced tables and fill them with an org of `size`. Returns seconds per table."""
    from opportunities.models import Activity, ContactRole, Opportunity, PersonOpportunityTotals
    from opportunities.totals import rebuild_all_totals
    from people.models import Person

    d = Dialect(connection.vendor)
    timings: dict[str, float] = {}
    with connection.cursor() as cursor:
        for model in (PersonOpportunityTotals, Activity, ContactRole, Opportunity, Person):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")
        _lookup_tables(cursor)
    _field_definitions()
    counts = {
        "first": len(FIRST_NAMES),
        "last": len(LAST_NAMES) * len(SUFFIXES),
        "company": len(LAST_NAMES) * 6,
    }

    def run(label: str, total: int, sql_for: Callable[[int, int], str]) -> None:
        started = time.perf_counter()
        for start, stop in _chunks(total):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql_for(start, stop))
        timings[label] = time.perf_counter() - started
        report(f"  {label}: {total:,} rows in {timings[label]:.1f} s")

    now = d.now()
    run(
        "people",
        size.people,
        lambda a, b: (
            f"""
        INSERT INTO people_person (sf_contact_id, sf_lead_id, email, first_name, last_name, company, title,
            lead_source, phone, is_deleted_in_salesforce, custom_fields, created_at, updated_at)
        SELECT {d.sf_id("003", "n")}, NULL,
            lower(f.name || '.' || l.name || n || '@example.com'), f.name, l.name, c.name, '',
            {_case("n * 31", LEAD_SOURCES)}, '', {d.true("n % 97 = 0")}, '{{}}', {now}, {now}
        FROM {d.seq(a, b)}
        JOIN bench_names f ON f.kind = 'first' AND f.i = (n * 7919) % {counts["first"]}
        JOIN bench_names l ON l.kind = 'last' AND l.i = (n * 104729) % {counts["last"]}
        JOIN bench_names c ON c.kind = 'company' AND c.i = (n * 15485863) % {counts["company"]}"""
        ),
    )
    stage = "(n * 17) % 8"
    stage_case = _case(stage, [s[0] for s in STAGES])
    probability = (
        "(CASE " + stage + " " + " ".join(f"WHEN {i} THEN {s[1]}" for i, s in enumerate(STAGES)) + " END)"
    )
    closed = "(CASE " + stage + " WHEN 5 THEN 1 WHEN 6 THEN 1 ELSE 0 END) = 1"
    won = f"({stage}) = 5"
    amount = "(CASE WHEN n % 50 = 0 THEN NULL ELSE ((n * 37) % 200 + 1) * 500 END)"
    run(
        "opportunities",
        size.opportunities,
        lambda a, b: (
            f"""
        INSERT INTO opportunities_opportunity (sf_id, name, account_sf_id, account_name, stage_name, amount,
            expected_revenue, probability, close_date, type, lead_source, is_closed, is_won, forecast_category,
            next_step, currency_iso_code, owner_sf_id, created_in_salesforce, last_modified_in_salesforce,
            system_modstamp, is_deleted, custom_fields, synced_at)
        SELECT {d.sf_id("006", "n")}, c.name || ' - Deal ' || n, {d.sf_id("001", "(n * 13) % 200000")}, c.name,
            {stage_case}, {amount}, {amount} * {probability} / 100.0, {probability},
            {d.date_minus_days("2027-06-30", "(n * 13) % 1000")}, {_case("n * 7", TYPES)},
            {_case("n * 11", LEAD_SOURCES)}, {closed}, {won}, '', '', 'USD', '', {now}, {now}, {now},
            {d.true("n % 200 = 0")},
            {d.json_object("'Region__c'", _case("n * 3", REGIONS), "'Segment__c'", _case("n * 5", SEGMENTS), "'Score__c'", "(n * 7) % 100")},
            {now}
        FROM {d.seq(a, b)}
        JOIN bench_names c ON c.kind = 'company' AND c.i = (n * 2654435761) % {counts["company"]}"""
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM people_person")
        person_min = cursor.fetchone()[0]
        cursor.execute("SELECT min(id) FROM opportunities_opportunity")
        opportunity_min = cursor.fetchone()[0]
    # Each pass over the opportunities shifts the people by a prime, so a person's second and
    # third roles land on other opportunities (not the same one again).
    person = f"({person_min} + ((n + ((n - 1) / {size.opportunities}) * 7919) * 2654435761) % {size.people})"
    opportunity = f"({opportunity_min} + (n - 1) % {size.opportunities})"
    run(
        "contact roles",
        size.contact_roles,
        lambda a, b: (
            f"""
        INSERT INTO opportunities_contactrole (sf_id, opportunity_id, person_id, sf_opportunity_id, sf_contact_id,
            role, is_primary, system_modstamp, is_deleted, custom_fields, synced_at)
        SELECT {d.sf_id("00K", "n")}, {opportunity}, {person}, {d.sf_id("006", f"{opportunity} - {opportunity_min} + 1")},
            {d.sf_id("003", f"{person} - {person_min} + 1")}, {_case("n * 5", ROLES)}, {d.true("n % 3 = 0")},
            {now}, {d.true("n % 50 = 0")}, '{{}}', {now}
        FROM {d.seq(a, b)}"""
        ),
    )
    kind = "(n * 7) % 3"
    minutes_ago = "(n * 7919) % 525600"
    # Independent of `kind` (n * 7 % 3): integer division decorrelates the two.
    field = _case("(n / 3) * 11", ["StageName", "Amount", "CloseDate"])
    run(
        "activities",
        size.activities,
        lambda a, b: (
            f"""
        INSERT INTO opportunities_activity (person_id, opportunity_id, activity_type, occurred_at, recorded_at,
            sf_contact_role_id, role, is_primary, field, previous_value, new_value, is_initial_load, sync_cycle_id)
        SELECT {person_min} + (n * 48271) % {size.people}, {opportunity_min} + (n * 16807) % {size.opportunities},
            {_case(kind, ["added_to_opportunity", "removed_from_opportunity", "opportunity_updated"])},
            {d.now_minus_minutes(minutes_ago)}, {d.now_minus_minutes_plus_seconds(minutes_ago, "1 + n % 5")},
            '', CASE WHEN {kind} = 2 THEN '' ELSE {_case("n * 5", ROLES)} END,
            CASE WHEN {kind} = 2 THEN NULL ELSE {d.true("n % 3 = 0")} END,
            CASE WHEN {kind} = 2 THEN {field} ELSE '' END,
            CASE WHEN {kind} = 2 THEN {d.json_text(_case("n * 17 + 7", [s[0] for s in STAGES]))} ELSE NULL END,
            CASE WHEN {kind} = 2 THEN {d.json_text(_case("n * 17", [s[0] for s in STAGES]))} ELSE NULL END,
            {d.true("n % 10 = 0")}, NULL
        FROM {d.seq(a, b)}"""
        ),
    )
    started = time.perf_counter()
    with transaction.atomic():
        rows = rebuild_all_totals()  # what the sync keeps current, built once for the whole org
    timings["opportunity totals"] = time.perf_counter() - started
    report(f"  opportunity totals: {rows:,} rows in {timings['opportunity totals']:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_names")
        started = time.perf_counter()
        # A live org's tables have been vacuumed by autovacuum: index-only scans rely on that.
        # VACUUM refuses to run in a transaction (the suite's tiny run); ANALYZE alone does then.
        can_vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
        cursor.execute("VACUUM ANALYZE" if can_vacuum else "ANALYZE")
        timings["analyze"] = time.perf_counter() - started
    return timings
