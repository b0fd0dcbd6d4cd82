"""Admin building blocks shared by the apps."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .pagination import EstimatedCountPaginator


class SyncedReadOnlyAdmin(admin.ModelAdmin[Any]):
    """An admin for data that Salesforce owns: everybody, superusers included, may only look.

    The sync is one-way: an edit here would be overwritten by the next cycle, so none is offered.
    Lists count a whole big table from statistics, never twice (see EstimatedCountPaginator).
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
