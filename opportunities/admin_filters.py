"""Picklist filters for the admin lists of synced records: their choices are the values
Salesforce's describe lists (FieldDefinition), never a `SELECT DISTINCT` over a table of millions.
Filters that know nothing of Salesforce (date ranges) are the kernel's (oppsync_site/admin_filters.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import FieldDefinition


class PicklistFilter(admin.SimpleListFilter):
    """Choices from a Salesforce picklist's values as describe lists them (active values only)."""

    sobjects: tuple[str, ...] = ()
    api_name = ""
    # The model field filtered; defaults to `parameter_name`.
    field_name = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        values: list[str] = []
        for picklist in FieldDefinition.objects.filter(
            sobject__in=self.sobjects, api_name=self.api_name
        ).values_list("picklist_values", flat=True):
            values += [v for v in picklist or [] if v not in values]
        return [(value, value) for value in values]

    def has_output(self) -> bool:
        # A value in the URL filters even when describe lists no values (yet).
        return super().has_output() or self.value() is not None

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(**{str(self.field_name or self.parameter_name): value})


def picklist_filter(
    title: str, parameter: str, sobjects: tuple[str, ...], api_name: str
) -> type[PicklistFilter]:
    """A list filter over one Salesforce picklist, e.g. the Opportunity stage."""
    return type(
        f"{api_name}PicklistFilter",
        (PicklistFilter,),
        {"title": title, "parameter_name": parameter, "sobjects": sobjects, "api_name": api_name},
    )
