"""Paginators that say whether their count is exact.

A smart list's count is an answer a marketer acts on, so every smart-list count is exact
(ExactCountPaginator). Only raw lists of synced tables (the admin's people, opportunities, contact
roles and activities, and the API's plain lists of them) may show PostgreSQL's estimate
(EstimatedCountPaginator), and wherever they do, they say so: `count_is_estimate` in the API and
"about N" in the admin.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


class ExactCountPaginator(Paginator):
    """Django's paginator (an exact `COUNT(*)`), which says so."""

    @property
    def count_is_estimate(self) -> bool:
        return False


class EstimatedCountPaginator(ExactCountPaginator):
    """Exact counts, except where PostgreSQL's planner expects more than ESTIMATE_ABOVE rows.

    Counting millions of rows exactly takes seconds and tells a person browsing a raw table
    nothing an estimate of "about 2,450,000" does not. A whole table is estimated from its
    statistics (`pg_class`), a filtered list from the planner's row estimate for the query
    (`EXPLAIN`); below ESTIMATE_ABOVE the exact count is taken, so small installations and narrow
    filters see exact numbers. SQLite has neither, so there every count is exact.
    """

    ESTIMATE_ABOVE = 100_000

    @cached_property
    def _counted(self) -> tuple[int, bool]:
        estimate = self.estimate()
        if estimate is not None and estimate > self.ESTIMATE_ABOVE:
            return estimate, True
        return int(super().count), False

    @property
    def count(self) -> int:
        return self._counted[0]

    @property
    def count_is_estimate(self) -> bool:
        return self._counted[1]

    def estimate(self) -> int | None:
        """PostgreSQL's idea of how many rows the list holds, or None where there is none."""
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or connections[queryset.db].vendor != "postgresql":
            return None
        return plan_estimate(queryset) if queryset.query.where else _table_estimate(queryset)


def about(count: int) -> int:
    """An estimate rounded to three significant digits (2,448,917 -> 2,450,000): the digits
    after those are noise, and showing them would suggest they were counted."""
    digits = len(str(abs(count)))
    return count if digits <= 3 else round(count, 3 - digits)


def _table_estimate(queryset: QuerySet[Any]) -> int | None:
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


def plan_estimate(queryset: QuerySet[Any]) -> int | None:
    """The planner's row estimate for the query, without running it."""
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return 0  # Django knows without asking: nothing can match
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    rows = plan[0]["Plan"].get("Plan Rows")
    return int(rows) if isinstance(rows, int | float) else None
