"""Per-person opportunity totals (`PersonOpportunityTotals`): computing and refreshing them.

The sync calls `refresh_person_totals` with every person whose roles or opportunities a page
touched, inside the page's transaction, so a smart list never sees roles and totals disagree. A
refresh recomputes the person's row from the roles and opportunities themselves (never adds a
delta), so it is idempotent and cannot drift: applying the same page twice gives the same row.

The semantics are those of the Opportunity Info tab (`selectors.person_opportunity_totals`): live
roles on live opportunities, each opportunity counted once however many roles the person has on it,
a missing amount adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from .models import ContactRole, Opportunity, PersonOpportunityTotals

# Subsets of a person's opportunities with their own columns: the constraint that selects them in
# a smart-list aggregate filter, and the SQL condition that computes them.
VARIANTS: dict[str, tuple[tuple[str, str], str]] = {
    "open": (("IsClosed", "is_false"), "NOT o.is_closed"),
    "won": (("IsWon", "is_true"), "o.is_won"),
}
TOTALS = ("number_of_optys", "total_opty_amount", "total_opty_expected_revenue")
_CHUNK = 500  # people per statement: SQLite's parameter limit is far above, the statements stay small


def totals_column(total: str, constraints: list[tuple[str, str]]) -> str | None:
    """The column holding `total` over the opportunities `constraints` select, as a list of
    (field, operator) pairs without values; None when no column holds that subset."""
    if not constraints:
        return total
    if len(constraints) == 1:
        for variant, (selector, _sql) in VARIANTS.items():
            if constraints[0] == selector:
                return f"{variant}_{total}"
    return None


def _select_sql(person_filter: str) -> str:
    role, opportunity = ContactRole._meta.db_table, Opportunity._meta.db_table
    columns = ["COUNT(*)", "COALESCE(SUM(o.amount), 0)", "COALESCE(SUM(o.expected_revenue), 0)"]
    for _selector, condition in VARIANTS.values():
        columns += [
            f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)",
            f"COALESCE(SUM(CASE WHEN {condition} THEN o.amount END), 0)",
            f"COALESCE(SUM(CASE WHEN {condition} THEN o.expected_revenue END), 0)",
        ]
    # DISTINCT pairs: a person with two roles on one opportunity counts it once.
    return (
        f"SELECT pr.person_id, {', '.join(columns)} "
        f"FROM (SELECT DISTINCT person_id, opportunity_id FROM {role} "
        f"WHERE NOT is_deleted AND person_id IS NOT NULL AND opportunity_id IS NOT NULL{person_filter}) pr "
        f"JOIN {opportunity} o ON o.id = pr.opportunity_id "
        "WHERE NOT o.is_deleted GROUP BY pr.person_id"
    )


def _columns() -> list[str]:
    return ["person_id", *TOTALS, *[f"{variant}_{total}" for variant in VARIANTS for total in TOTALS]]


def refresh_person_totals(person_ids: Iterable[int | None]) -> None:
    """Recompute the totals rows of these people (None is ignored), in the caller's transaction."""
    ids = sorted({pk for pk in person_ids if pk is not None})
    table = PersonOpportunityTotals._meta.db_table
    columns = _columns()
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"DELETE FROM {table} WHERE person_id IN ({marks})", chunk)
            # ON CONFLICT: a concurrent refresh of the same person overwrites instead of failing.
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"{_select_sql(f' AND person_id IN ({marks})')} "
                f"ON CONFLICT (person_id) DO UPDATE SET {updates}",
                chunk,
            )


def rebuild_all_totals() -> int:
    """Recompute every row (after a restore, or to check the sync kept them right). Returns rows."""
    table = PersonOpportunityTotals._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(f"INSERT INTO {table} ({', '.join(_columns())}) {_select_sql('')}")
        return cursor.rowcount


def people_of_opportunities(opportunity_ids: Iterable[int]) -> set[int]:
    """Everyone with a role (live or not) on these opportunities: their totals may have changed."""
    ids = list(opportunity_ids)
    people: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        people.update(
            ContactRole.objects.filter(
                opportunity_id__in=ids[start : start + _CHUNK], person__isnull=False
            ).values_list("person_id", flat=True)
        )
    return people
