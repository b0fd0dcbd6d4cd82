"""The order of an admin search's page on PostgreSQL: from the matches, not from an index walk.

A list ordered by name reads its first page by walking the name index and testing each row
against the search; that stops after one page when matches are spread through the alphabet, but
reads most of the table when they sit together in it, as they do in a real org: "smith" matches
people named Smith (and their emails), late in the alphabet, and the walk tests 780,000 of
1,000,000 people before it has 50 (2.7 s). The planner cannot see that: it assumes matches are
spread evenly. The API's search is fast only because it orders by id, which they are spread over.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import CharField, F, Model, OrderBy, QuerySet, TextField, Value
from django.db.models.functions import Concat

from .pagination import plan_estimate

M = TypeVar("M", bound=Model)


def sorted_from_matches(queryset: QuerySet[M], *, at_most: int) -> QuerySet[M]:
    """`queryset` (a search), ordered so that PostgreSQL finds the matches through the trigram
    indexes and sorts them, when the planner expects at most `at_most` of them.

    Each text column of the ordering becomes the same column with '' appended: the same order,
    which no index gives, so the planner must sort (top-N heapsort), and the only way left to
    the rows is the trigram bitmap ("smith" at 1M people: 0.12 s instead of 2.7 s). Its cost grows
    with the matches, so a broad search ("example", in every email) keeps the index walk, which
    fills its page at once. SQLite has neither the indexes nor an estimate: left as it is.
    """
    if connections[queryset.db].vendor != "postgresql":
        return queryset
    estimate = plan_estimate(queryset)
    if estimate is None or estimate > at_most:
        return queryset
    ordering = queryset.query.order_by or tuple(queryset.model._meta.ordering or ())
    return queryset.order_by(*(_outside_any_index(queryset.model, part) for part in ordering))


def _outside_any_index(model: type[Model], part: Any) -> Any:
    if not isinstance(part, str) or part.lstrip("-") == "pk" or "__" in part:
        return part
    name = part.lstrip("-")
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:  # an annotation's alias or "?": not a column an index walks
        return part
    if not isinstance(field, CharField | TextField):
        return part  # the id that breaks ties: no index walk starts from it after a text column
    expression = Concat(F(name), Value(""), output_field=TextField())
    return OrderBy(expression, descending=part.startswith("-"))
