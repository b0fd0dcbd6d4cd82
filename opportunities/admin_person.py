"""Person admin: the searchable people list and the person page with its three tabs.

It lives here, not in `people/`, because every part of it reads this app: the lead-source filter
and the custom fields come from describe (FieldDefinition), two of the tabs are the person's
opportunities and activities. The people app stays below this one (pyproject's import contracts);
`opportunities/admin.py` imports this module so that the admin's autodiscovery registers it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from oppsync_site.admin_mixins import SyncedReadOnlyAdmin
from oppsync_site.admin_pages import admin_page_context, paginate
from people.models import Person

from .admin_filters import picklist_filter
from .admin_pages import activity_filters_from, activity_rows
from .models import ActivityType
from .selectors import (
    OPPORTUNITY_INFO_DEFAULT_SORT,
    OPPORTUNITY_INFO_SORTS,
    active_custom_fields,
    field_labels,
    person_activity_log,
    person_opportunity_roles,
    person_opportunity_totals,
)

PERSON_TABS = {"info": "Info", "opportunities": "Opportunity Info", "activity": "Activity Log"}


PersonLeadSourceFilter = picklist_filter("lead source", "lead_source", ("Contact", "Lead"), "LeadSource")


@admin.register(Person)
class PersonAdmin(SyncedReadOnlyAdmin):
    list_display = [
        "__str__",
        "email",
        "company",
        "title",
        "lead_source",
        "salesforce_kind",
        "is_deleted_in_salesforce",
    ]
    list_display_links = ["__str__"]
    list_filter = ["is_deleted_in_salesforce", PersonLeadSourceFilter]
    # Trigram indexes serve these on PostgreSQL (people migration 0002); ids match exactly.
    search_fields = [
        "first_name",
        "last_name",
        "email",
        "company",
        "sf_contact_id__exact",
        "sf_lead_id__exact",
    ]
    search_help_text = "Name, email, company, or a Salesforce Contact/Lead id"

    @admin.display(description="Salesforce")
    def salesforce_kind(self, person: Person) -> str:
        if person.sf_contact_id and person.sf_lead_id:
            return "Contact (converted lead)"
        return person.salesforce_kind

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The person page: Info, Opportunity Info and Activity Log; `?tab=` keeps the tab."""
        person = get_object_or_404(Person.objects.select_related("merged_into"), pk=object_id)
        tab = request.GET.get("tab", "info")
        if tab not in PERSON_TABS:
            tab = "info"
        context = admin_page_context(self, request, person, title=str(person))
        context.update({"person": person, "tab": tab, "tabs": PERSON_TABS})
        if tab == "info":
            context["custom_fields"] = [
                (definition, person.custom_fields.get(definition.api_name))
                for definition in active_custom_fields(("Contact", "Lead"))
            ]
            context["merged_people"] = list(person.merged_people.order_by("id")[:20])
        elif tab == "opportunities":
            sort = request.GET.get("sort", OPPORTUNITY_INFO_DEFAULT_SORT)
            if sort.lstrip("-") not in OPPORTUNITY_INFO_SORTS:
                sort = OPPORTUNITY_INFO_DEFAULT_SORT
            context.update(
                {
                    "sort": sort,
                    "roles": list(person_opportunity_roles(person, sort=sort)),
                    "totals": person_opportunity_totals(person),
                }
            )
        else:
            filters = activity_filters_from(request)
            page = paginate(
                request,
                person_activity_log(
                    person,
                    activity_type=filters.activity_type or None,
                    occurred_from=filters.occurred_from,
                    occurred_before=filters.occurred_before,
                ),
            )
            context.update(
                {
                    "filters": filters,
                    "activity_types": ActivityType.choices,
                    "page": page,
                    "activity_rows": activity_rows(page, field_labels(("Opportunity",))),
                }
            )
        return TemplateResponse(request, "admin/people/person/detail.html", context)
