"""Per-person opportunity totals (`PersonOpportunityTotals`): computing and refreshing them.

The sync calls `refresh_person_totals` with every person whose roles, opportunities or Added /
Removed activities a page touched, inside the page's transaction, so a smart list never sees roles
and totals disagree. A refresh recomputes the person's row from the roles, opportunities and
activities themselves (never adds a delta), so it is idempotent and cannot drift: applying the
same page twice gives the same row. Each page transaction first reads the coverage row once,
locked against a rebuild (`locked_coverage`), and refreshes and decides with what it read.

The semantics are those of the Opportunity Info tab (`selectors.person_opportunity_totals`): live
roles on live opportunities, each opportunity counted once however many roles the person has on it,
a missing amount adds nothing. Picklist values are collected over the same opportunities, for the
fields `TotalsCoverage` names; the latest activity times count activities on live opportunities,
as the smart lists' activity filters do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from django.db import connection, transaction
from django.utils import timezone

from .models import (
    Activity,
    ActivityType,
    ContactRole,
    FieldDefinition,
    Opportunity,
    PersonOpportunityTotals,
    TotalsCoverage,
)

# Subsets of a person's opportunities whose totals have their own columns, by name, and the SQL
# condition on an opportunity `o` that selects them: the open ones (not closed), the won ones.
VARIANTS: dict[str, str] = {
    "open": "NOT o.is_closed",
    "won": "o.is_won",
}
TOTALS = ("number_of_optys", "total_opty_amount", "total_opty_expected_revenue")
_CHUNK = 500  # people per statement: the statements stay small


def totals_column(total: str, variant: str = "") -> str:
    """The column holding `total` over all of a person's opportunities, or over a variant's."""
    return f"{variant}_{total}" if variant else total


# Describe types whose values the rows hold (`picklist_key`): one value per opportunity. Not
# multi-select picklists: their "A;B" is a set, which smart lists match item by item through the
# roles (`smartlists.evaluate._holds`); a key per whole set would answer "is A" wrongly.
PICKLIST_TYPES = ("picklist", "combobox")
# Salesforce API names are letters, digits and underscores; only such a name is written into SQL.
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ACTIVITY_TIMES = {
    "last_added_at": ActivityType.ADDED_TO_OPPORTUNITY,
    "last_removed_at": ActivityType.REMOVED_FROM_OPPORTUNITY,
}


def picklist_key(api_name: str, value: str) -> str:
    """The key of `PersonOpportunityTotals.picklist_values` for one value of one field."""
    return f"{api_name}={value}"


def _picklist_value_sql(api_name: str) -> str:
    """The SQL text of an opportunity's value of this field, as the smart lists compare it."""
    column = Opportunity.SALESFORCE_COLUMNS.get(api_name)
    if column:
        return f"o.{column}"
    if connection.vendor == "postgresql":
        return f"o.custom_fields ->> '{api_name}'"
    return f"json_extract(o.custom_fields, '$.\"{api_name}\"')"


def _json_object_agg(key: str, value: str) -> str:
    if connection.vendor == "postgresql":
        return f"jsonb_object_agg({key}, {value})"
    return f"json_group_object({key}, {value})"


def _select_sql(person_ids: Sequence[int] | None, picklist_fields: list[str], activity_times: bool) -> str:
    """SELECT of whole rows (`_columns()` order) for these people (None: everyone) among those
    with a live role or an activity.

    Three kinds of partial rows (totals; one picklist value; latest activity times) in one
    UNION ALL, grouped by person: no join between them, which SQLite would run as a scan per
    person (ten minutes at 100,000 people)."""
    role, opportunity = ContactRole._meta.db_table, Opportunity._meta.db_table
    activity = Activity._meta.db_table
    columns = ["COUNT(*)", "COALESCE(SUM(o.amount), 0)", "COALESCE(SUM(o.expected_revenue), 0)"]
    for condition in VARIANTS.values():
        columns += [
            f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)",
            f"COALESCE(SUM(CASE WHEN {condition} THEN o.amount END), 0)",
            f"COALESCE(SUM(CASE WHEN {condition} THEN o.expected_revenue END), 0)",
        ]
    # Integers from the database, written as literals: the same list appears in several parts of
    # the statement, each condition on its own part's column.
    listed = None if person_ids is None else ", ".join(str(int(pk)) for pk in person_ids)
    role_condition = "" if listed is None else f" AND person_id IN ({listed})"
    activity_condition = "" if listed is None else f" AND a.person_id IN ({listed})"
    names = [f"t{i}" for i in range(len(columns))]
    zeros = ", ".join(f"0 AS {n}" for n in names)
    # Typed NULLs: PostgreSQL would take an untyped one for text, which a timestamp column refuses.
    null_time = "CAST(NULL AS TIMESTAMP WITH TIME ZONE)" if connection.vendor == "postgresql" else "NULL"
    no_times = ", ".join(f"{null_time} AS {column}" for column in ACTIVITY_TIMES)
    # DISTINCT pairs: a person with two roles on one opportunity counts it once.
    live_pairs = (
        f"(SELECT DISTINCT person_id, opportunity_id FROM {role} WHERE NOT is_deleted "
        f"AND person_id IS NOT NULL AND opportunity_id IS NOT NULL{role_condition}) pr "
        f"JOIN {opportunity} o ON o.id = pr.opportunity_id"
    )
    parts = [
        f"SELECT pr.person_id, {', '.join(f'{c} AS {n}' for c, n in zip(columns, names, strict=True))}, "
        f"CAST(NULL AS TEXT) AS k, {no_times} FROM {live_pairs} WHERE NOT o.is_deleted GROUP BY pr.person_id"
    ]
    if picklist_fields:
        # One pass over the live pairs, each crossed with the covered fields' names; the key is
        # `picklist_key` (field and value in one string, so a lookup never splices a field name).
        field_names = " UNION ALL ".join(f"SELECT '{name}' AS field" for name in picklist_fields)
        value = (
            "CASE f.field "
            + " ".join(f"WHEN '{name}' THEN {_picklist_value_sql(name)}" for name in picklist_fields)
            + " END"
        )
        parts.append(
            f"SELECT pr.person_id, {zeros}, f.field || '=' || {value} AS k, {no_times} "
            f"FROM {live_pairs} CROSS JOIN ({field_names}) f WHERE NOT o.is_deleted AND {value} <> '' "
            f"GROUP BY pr.person_id, f.field, {value}"
        )
    if activity_times:
        types = ", ".join(f"'{kind.value}'" for kind in ACTIVITY_TIMES.values())
        latest = ", ".join(
            f"MAX(CASE WHEN a.activity_type = '{kind.value}' THEN a.occurred_at END) AS {column}"
            for column, kind in ACTIVITY_TIMES.items()
        )
        parts.append(
            f"SELECT a.person_id, {zeros}, CAST(NULL AS TEXT), {latest} "
            f"FROM {activity} a "
            f"JOIN {opportunity} o ON o.id = a.opportunity_id AND NOT o.is_deleted "
            f"WHERE a.activity_type IN ({types}){activity_condition} "
            "GROUP BY a.person_id"
        )
    # Only presence matters (`true`): a count per key made every row a fifth wider to scan.
    true = "TRUE" if connection.vendor == "postgresql" else "json('true')"
    picklists = f"COALESCE({_json_object_agg('k', true)} FILTER (WHERE k IS NOT NULL), '{{}}')"
    values = [f"SUM({n})" for n in names] + [picklists] + [f"MAX({c})" for c in ACTIVITY_TIMES]
    # WHERE 1 = 1: SQLite would read the ON CONFLICT of an upsert as part of the SELECT otherwise.
    return (
        f"SELECT person_id, {', '.join(values)} FROM ({' UNION ALL '.join(parts)}) partial "
        "WHERE 1 = 1 GROUP BY person_id"
    )


def _columns() -> list[str]:
    return [
        "person_id",
        *TOTALS,
        *[totals_column(total, variant) for variant in VARIANTS for total in TOTALS],
        "picklist_values",
        *ACTIVITY_TIMES,
    ]


def locked_coverage(*, exclusive: bool = False) -> TotalsCoverage:
    """The coverage row, read once and locked until the caller's transaction ends: shared (FOR
    SHARE) by the transactions that write rows with its fields or decide by them whether a change
    moves the rows, exclusive (FOR UPDATE) for a rebuild, which changes them. A page applied while
    a rebuild runs therefore waits for it and then sees the fields it covers, or the rebuild waits
    for the page and then reads what the page wrote: a change to a field the rebuild starts
    covering is never missed by both (P11 case 4). A page reads it once, at the start of its
    transaction, and passes it to every refresh and to its change detection.

    On SQLite every transaction is BEGIN IMMEDIATE (one writer at a time, settings), so the plain
    read is enough there."""
    lock = ""
    if connection.vendor == "postgresql":
        lock = " FOR UPDATE" if exclusive else " FOR SHARE"
    # Raw SQL: the ORM has no FOR SHARE; raw() still returns the model, its JSON decoded.
    sql = f"SELECT * FROM {TotalsCoverage._meta.db_table} WHERE id = 1{lock}"
    found = list(TotalsCoverage.objects.raw(sql))
    if not found:  # a new database: the row is made once, then read (and locked) as always
        TotalsCoverage.objects.get_or_create(pk=1)
        found = list(TotalsCoverage.objects.raw(sql))
    return found[0]


def refresh_person_totals(person_ids: Iterable[int | None], coverage: TotalsCoverage | None = None) -> None:
    """Recompute the totals rows of these people (None is ignored), in the caller's transaction,
    with the fields of `coverage` (`locked_coverage()` of that transaction; read and locked here
    when not given)."""
    ids = sorted({pk for pk in person_ids if pk is not None})
    if not ids:
        return
    table = PersonOpportunityTotals._meta.db_table
    columns = _columns()
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    with transaction.atomic(), connection.cursor() as cursor:
        if coverage is None:
            coverage = locked_coverage()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            select = _select_sql(chunk, coverage.picklist_fields, coverage.activity_times)
            listed = ", ".join(str(int(pk)) for pk in chunk)
            cursor.execute(f"DELETE FROM {table} WHERE person_id IN ({listed})")
            # ON CONFLICT: a concurrent refresh of the same person overwrites instead of failing.
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) {select} "
                f"ON CONFLICT (person_id) DO UPDATE SET {updates}"
            )


def picklist_fields_to_cover() -> list[str]:
    """The Opportunity picklist fields describe shows, as a rebuild would cover them."""
    names = FieldDefinition.objects.filter(
        sobject="Opportunity", is_active=True, field_type__in=PICKLIST_TYPES
    ).values_list("api_name", flat=True)
    return sorted(name for name in names if _API_NAME.match(name))


def coverage_is_current() -> bool:
    """Whether the rows hold the activity times and exactly the picklist fields describe shows."""
    coverage = TotalsCoverage.objects.filter(pk=1).first()
    return (
        coverage is not None
        and coverage.activity_times
        and coverage.picklist_fields == picklist_fields_to_cover()
    )


def rebuild_all_totals() -> int:
    """Recompute every row, covering the picklist fields describe shows now and the activity
    times (after a restore, when a picklist field appears, or to check the sync kept them right).
    Returns rows."""
    table = PersonOpportunityTotals._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        coverage = locked_coverage(exclusive=True)
        fields = picklist_fields_to_cover()
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(f"INSERT INTO {table} ({', '.join(_columns())}) {_select_sql(None, fields, True)}")
        rows = cursor.rowcount
        coverage.picklist_fields, coverage.activity_times = fields, True
        coverage.rebuilt_at = timezone.now()
        coverage.save()
        return rows


def people_of_opportunities(opportunity_ids: Iterable[int], *, liveness_changed: bool = True) -> set[int]:
    """Everyone whose totals or latest activity times these opportunities may have moved: people
    with a role (live or not) on them and, when they were deleted or undeleted
    (`liveness_changed`), people with an Added / Removed activity on them. Only deletion and
    undeletion change which activities count (those on live opportunities); an amount or a
    stage changes nothing about them."""
    ids = list(opportunity_ids)
    people: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        people.update(
            ContactRole.objects.filter(opportunity_id__in=chunk, person__isnull=False).values_list(
                "person_id", flat=True
            )
        )
        if liveness_changed:
            people.update(
                Activity.objects.filter(
                    opportunity_id__in=chunk, activity_type__in=list(ACTIVITY_TIMES.values())
                ).values_list("person_id", flat=True)
            )
    return people
