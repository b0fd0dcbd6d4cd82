"""The smart-list builder, member table and "why" view in the admin (product.md §4).

The builder is one page of plain JavaScript (`static/oppsync/builder.js`, set up by admin_builder.py)
generated from the same registry as the API: it reads `GET /api/v1/filters/`, previews through
`POST /api/v1/smart-lists/preview/` and saves through the API, so the admin and API clients can
never disagree about what a definition means.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils.dateparse import parse_datetime

from opportunities.models import ActivityType
from oppsync_site.admin_pages import custom_page_context, object_page_urls
from people.models import Person

from .admin_builder import BuilderAdmin
from .evaluate import InactiveFieldsError, SmartListCycleError, evaluate
from .models import SmartList
from .services import MEMBER_FIELDS, MEMBER_ORDERINGS, members, smart_list_why
from .validation import DefinitionError

MEMBERS_PAGE_SIZE = 50


@admin.register(SmartList)
class SmartListAdmin(BuilderAdmin[SmartList]):
    list_display = ["name", "description", "updated_at", "created_by"]
    search_fields = ["name", "description"]
    list_select_related = ["created_by"]
    builder_template = "admin/smartlists/smartlist/builder.html"
    builder_add_title = "New smart list"

    def get_urls(self) -> list[URLPattern]:
        return [
            *object_page_urls(
                self,
                ("members/", self.members_view, "members"),
                ("members/<int:person_id>/why/", self.why_view, "why"),
            ),
            *super().get_urls(),
        ]

    def builder_page(
        self, request: HttpRequest, smart_list: SmartList | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        page = {
            "id": smart_list.pk if smart_list else None,
            "name": smart_list.name if smart_list else "",
            "description": smart_list.description if smart_list else "",
            "definition": smart_list.definition if smart_list else {"logic": "all", "filters": []},
            "membersUrl": reverse("admin:smartlists_smartlist_members", args=[smart_list.pk])
            if smart_list
            else "",
        }
        return {"smart_list": smart_list}, page

    def _list_page(
        self, request: HttpRequest, object_id: int, title: str
    ) -> tuple[SmartList, bool, dict[str, Any]]:
        """The list (checked for permission), whether the reader confirmed leaving out deactivated
        fields, and the page context the member and why pages share."""
        smart_list = get_object_or_404(SmartList, pk=object_id)
        if not self.has_view_permission(request, smart_list):
            raise PermissionDenied
        context: dict[str, Any] = {
            **custom_page_context(self, request, title.format(list=smart_list.name)),
            "smart_list": smart_list,
        }
        return smart_list, request.GET.get("ignore_inactive_fields") == "true", context

    def members_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        smart_list, confirm, context = self._list_page(request, object_id, "{list}: members")
        context["member_fields"] = MEMBER_FIELDS
        try:
            evaluation = evaluate(smart_list.definition, ignore_inactive_fields=confirm)
        except InactiveFieldsError as error:
            context["inactive_warnings"] = error.warnings
            return TemplateResponse(request, "admin/smartlists/smartlist/members.html", context)
        except (DefinitionError, SmartListCycleError) as error:
            context["definition_error"] = str(error)
            return TemplateResponse(request, "admin/smartlists/smartlist/members.html", context)
        sort = request.GET.get("sort", "last_name")
        if sort.lstrip("-") not in MEMBER_ORDERINGS:
            sort = "last_name"
        page = Paginator(members(evaluation, ordering=[sort]), MEMBERS_PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        context.update(
            {
                "page": page,
                "sort": sort,
                "confirmed": confirm,
                "warnings": evaluation.checked.warnings,
                "csv_url": reverse("smart-list-members-csv", args=[smart_list.pk])
                + "?fields=email,first_name,last_name,company,title"
                + ("&ignore_inactive_fields=true" if confirm else ""),
            }
        )
        return TemplateResponse(request, "admin/smartlists/smartlist/members.html", context)

    def why_view(self, request: HttpRequest, object_id: int, person_id: int) -> HttpResponse:
        person = get_object_or_404(Person, pk=person_id)
        smart_list, confirm, context = self._list_page(request, object_id, f"Why is {person} in {{list}}?")
        context["person"] = person
        try:
            why = smart_list_why(evaluate(smart_list.definition, ignore_inactive_fields=confirm), person)
        except (InactiveFieldsError, DefinitionError, SmartListCycleError) as error:
            context["definition_error"] = str(error)
        else:
            # The API's ISO strings become dates the template shows in the subscription's zone.
            why["evaluated_at"] = parse_datetime(why["evaluated_at"])
            for entry in why["filters"]:
                if entry.get("activity"):
                    entry["activity"]["occurred_at"] = parse_datetime(entry["activity"]["occurred_at"])
                    entry["activity"]["type_label"] = ActivityType(entry["activity"]["type"]).label
            context["why"] = why
        return TemplateResponse(request, "admin/smartlists/smartlist/why.html", context)
