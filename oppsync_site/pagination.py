"""A paginator that does not count millions of rows to show one page of them."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Exact counts, except where PostgreSQL's planner expects more than ESTIMATE_ABOVE rows.

    Counting millions of rows exactly takes seconds and tells a person nothing an estimate of
    "about 2,450,000" does not. A whole table is estimated from its statistics (`pg_class`), a
    filtered list from the planner's row estimate for the query (`EXPLAIN`); below ESTIMATE_ABOVE
    the exact count is taken, so small installations and narrow filters see exact numbers.
    """

    ESTIMATE_ABOVE = 100_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and connections[queryset.db].vendor == "postgresql":
            estimate = _table_estimate(queryset) if not queryset.query.where else _plan_estimate(queryset)
            if estimate is not None and estimate > self.ESTIMATE_ABOVE:
                return estimate
        return int(super().count)


def _table_estimate(queryset: QuerySet[Any]) -> int | None:
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


def _plan_estimate(queryset: QuerySet[Any]) -> int | None:
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
