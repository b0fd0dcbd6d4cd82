"""Filter types shared by the API's filter sets."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from rest_framework.filters import BaseFilterBackend


class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """`true` or `false`; anything else is a 400 that names the parameter (django-filter's own
    boolean filter silently ignores values it does not understand)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(*args, **kwargs)


class IdFilter(django_filters.Filter):
    """An OppSync id: a whole number that fits the database (a huge or fractional one is a 400,
    never an overflow deep in the database driver)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class KnownQueryParameters(BaseFilterBackend):
    """A filter backend that refuses query parameters the endpoint does not take, with a 400 that
    names them (a typo like `?stgae=` would otherwise return the whole unfiltered list).

    An endpoint takes its filter set's parameters, pagination's, and those it lists in
    `query_parameters`."""

    COMMON = frozenset({"page", "page_size", "format"})

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        allowed = set(self.COMMON) | set(getattr(view, "query_parameters", ()))
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            from rest_framework.exceptions import ValidationError

            raise ValidationError(
                {
                    name: [f"is not a parameter of this endpoint; it takes {', '.join(sorted(allowed))}"]
                    for name in unknown
                }
            )
        return queryset
