"""Filter types shared by the API's filter sets."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms


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
