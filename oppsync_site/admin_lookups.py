"""Admin list URLs accept only the filters the page offers (P9).

Django lets a list URL filter on any lookup of the model's own fields: `?name__regex=(a+)+$`
runs a catastrophic pattern in the database, and `?created_at__year=99999999999` is a 500. Here
every list page takes the parameters of its own filters (its `list_filter` and `date_hierarchy`)
and nothing else; anything else is refused with a 400 that names it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

# What Django's own field filters put in the URL, beside the field's path.
FILTER_LOOKUPS = {"exact", "iexact", "isnull", "in", "gte", "lte", "gt", "lt", "id__exact"}
DATE_PARTS = {"year": (1, 9999), "month": (1, 12), "day": (1, 31)}


class FiltersOnlyLookups:
    """A ModelAdmin mixin; the site adds it to every admin it registers."""

    def _filter_parameters(self, request: HttpRequest) -> tuple[set[str], set[str], str | None]:
        """(parameter names of simple filters, field paths of field filters, date hierarchy)."""
        names: set[str] = set()
        paths: set[str] = set()
        for item in self.get_list_filter(request):  # type: ignore[attr-defined]  # a ModelAdmin
            if isinstance(item, str):
                paths.add(item)
            elif isinstance(item, list | tuple):
                paths.add(str(item[0]))
            elif isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                names.add(str(item.parameter_name))
        return names, paths, getattr(self, "date_hierarchy", None)

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        if request is None:
            return False
        names, paths, hierarchy = self._filter_parameters(request)
        if lookup in names:
            return True
        for path in paths:
            rest = lookup[len(path) + len(LOOKUP_SEP) :] if lookup.startswith(path + LOOKUP_SEP) else None
            if lookup == path or rest in FILTER_LOOKUPS:
                return bool(super().lookup_allowed(lookup, value, request))  # type: ignore[misc]  # a ModelAdmin
        if hierarchy and lookup.startswith(hierarchy + LOOKUP_SEP):
            part = lookup[len(hierarchy) + len(LOOKUP_SEP) :]
            if part in DATE_PARTS:
                low, high = DATE_PARTS[part]
                text = str(value[-1] if isinstance(value, list) else value)
                return text.isascii() and text.isdigit() and low <= int(text) <= high
        return False
