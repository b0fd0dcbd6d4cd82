"""Admin building blocks shared by the apps."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .admin_search import sorted_from_matches
from .pagination import EstimatedCountPaginator


class SyncedReadOnlyAdmin(admin.ModelAdmin[Any]):
    """An admin for data that Salesforce owns: everybody, superusers included, may only look.

    The sync is one-way: an edit here would be overwritten by the next cycle, so none is offered.
    Lists count a whole big table from statistics, never twice (see EstimatedCountPaginator),
    and a search that the paginator counts exactly is also sorted from its matches
    (admin_search.py): both are one pass over the matches.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            found = sorted_from_matches(found, at_most=EstimatedCountPaginator.ESTIMATE_ABOVE)
        return found, may_have_duplicates

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
