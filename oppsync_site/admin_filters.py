"""List filters that stay fast at millions of rows.

Django's stock filters for a text column run `SELECT DISTINCT column` over the whole table, and the
changelist counts every row on each page load. At a million opportunities and five million
activities that is seconds per page. Date ranges here are two inputs; picklist filters read their
choices from Salesforce's describe and are the opportunities app's (opportunities/admin_filters.py);
an unfiltered list is counted from the database's statistics on PostgreSQL
(oppsync_site/pagination.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import DateTimeField, Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date

# The dates Salesforce stores (1700-01-01 to 4000-12-31): a bound outside them matches nothing
# new, and near year 1 or 9999 the day after or the conversion to UTC leaves Python's calendar.
EARLIEST_DAY, LATEST_DAY = dt.date(1700, 1, 1), dt.date(4000, 12, 31)


class DateRangeFilter(admin.FieldListFilter):
    """`field__gte` / `field__lte` as two date inputs, days in the subscription's time zone."""

    template = "admin/oppsync/date_range_filter.html"

    def __init__(
        self,
        field: Any,
        request: HttpRequest,
        params: dict[str, Any],
        model: type[Model],
        model_admin: Any,
        field_path: str,
    ) -> None:
        self.lookup_from = f"{field_path}__gte"
        self.lookup_to = f"{field_path}__lte"
        # Django's __init__ moves our expected parameters from `params` to `used_parameters`.
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = f"{field.verbose_name} range"
        self.bounds: dict[str, Any] = {}
        for lookup in (self.lookup_from, self.lookup_to):
            raw = self.used_parameters.get(lookup)
            if raw is None:
                continue
            text = str(raw[-1] if isinstance(raw, list) else raw)
            self.used_parameters[lookup] = text
            try:
                day = parse_date(text)
            except ValueError:
                day = None
            if day is None:
                # The changelist turns this into its "?e=1" error page instead of a 500.
                raise IncorrectLookupParameters(f"{text!r} is not a date (YYYY-MM-DD).")
            if not EARLIEST_DAY <= day <= LATEST_DAY:
                raise IncorrectLookupParameters(f"{text!r} is outside {EARLIEST_DAY} to {LATEST_DAY}.")
            self.bounds[lookup] = day

    def expected_parameters(self) -> list[str | None]:
        return [self.lookup_from, self.lookup_to]

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: Any) -> Iterator[Any]:
        yield from [
            {
                "field_path": self.field_path,
                "lookup_from": self.lookup_from,
                "lookup_to": self.lookup_to,
                "value_from": self.used_parameters.get(self.lookup_from, ""),
                "value_to": self.used_parameters.get(self.lookup_to, ""),
                "other_params": [
                    (k, v)
                    for k, values in changelist.get_filters_params().items()
                    if k not in (self.lookup_from, self.lookup_to)
                    for v in (values if isinstance(values, list) else [values])
                ],
                "clear_url": changelist.get_query_string(remove=[self.lookup_from, self.lookup_to]),
            }
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        start, end = self.bounds.get(self.lookup_from), self.bounds.get(self.lookup_to)
        if isinstance(self.field, DateTimeField):
            if start is not None:
                queryset = queryset.filter(**{f"{self.field_path}__gte": start_of_day(start)})
            if end is not None:
                queryset = queryset.filter(
                    **{f"{self.field_path}__lt": start_of_day(end + dt.timedelta(days=1))}
                )
            return queryset
        if start is not None:
            queryset = queryset.filter(**{f"{self.field_path}__gte": start})
        if end is not None:
            queryset = queryset.filter(**{f"{self.field_path}__lte": end})
        return queryset


def start_of_day(day: dt.date) -> dt.datetime:
    """Midnight of `day` in the active time zone (the subscription's): "from 2026-11-01" means it."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
