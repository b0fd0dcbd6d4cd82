"""Admin for synced opportunity data (read-only for everyone) and sync health: the model admins,
Person's (`admin_person.py`) and the sync status page (`admin_views.py`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from oppsync_site.admin_filters import DateRangeFilter
from oppsync_site.admin_mixins import SyncedReadOnlyAdmin
from oppsync_site.admin_pages import admin_page_context, display_value, paginate
from oppsync_site.admin_site import admin_page_register
from oppsync_site.middleware import money_text

from . import admin_person  # noqa: F401  # registers Person's admin (the person page reads this app)
from .admin_filters import picklist_filter
from .admin_pages import activity_rows
from .admin_views import SYNC_STATUS_PAGE
from .models import (
    Activity,
    ContactRole,
    FieldDefinition,
    Opportunity,
    SyncCycle,
    SyncObjectRun,
    SyncState,
)
from .selectors import active_custom_fields, field_labels, opportunity_activities, opportunity_contact_roles

StageFilter = picklist_filter("stage", "stage_name", ("Opportunity",), "StageName")
OpportunityLeadSourceFilter = picklist_filter("lead source", "lead_source", ("Opportunity",), "LeadSource")
OpportunityTypeFilter = picklist_filter("type", "type", ("Opportunity",), "Type")
ContactRoleRoleFilter = picklist_filter("role", "role", ("OpportunityContactRole",), "Role")


@admin.register(Opportunity)
class OpportunityAdmin(SyncedReadOnlyAdmin):
    list_display = [
        "name",
        "account_name",
        "stage_name",
        "amount_display",
        "expected_revenue_display",
        "close_date",
        "is_closed",
        "is_won",
        "lead_source",
    ]
    list_filter = [
        StageFilter,
        "is_closed",
        "is_won",
        ("close_date", DateRangeFilter),
        OpportunityLeadSourceFilter,
        OpportunityTypeFilter,
    ]
    # Trigram indexes serve these on PostgreSQL (opportunities migration 0002); the id matches exactly.
    search_fields = ["name", "account_name", "sf_id__exact"]
    search_help_text = "Opportunity name, account name, or a Salesforce Opportunity id"
    sortable_by = [
        "name",
        "account_name",
        "stage_name",
        "amount_display",
        "expected_revenue_display",
        "close_date",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Opportunity]:
        # Deleted opportunities disappear from lists (product.md §1); their pages stay reachable.
        return super().get_queryset(request).filter(is_deleted=False)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, opportunity: Opportunity) -> str:
        return money_text(opportunity.amount)

    @admin.display(description="Expected revenue", ordering="expected_revenue")
    def expected_revenue_display(self, opportunity: Opportunity) -> str:
        return money_text(opportunity.expected_revenue)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The read-only opportunity page: fields by their Salesforce labels, contact roles with
        their people, and the opportunity's activity."""
        opportunity = get_object_or_404(Opportunity, pk=object_id)
        context = admin_page_context(self, request, opportunity, title=str(opportunity))
        labels = field_labels(("Opportunity",))
        page = paginate(request, opportunity_activities(opportunity))
        context.update(
            {
                "opportunity": opportunity,
                "standard_fields": [
                    (labels.get(api_name, api_name), api_name, display_value(getattr(opportunity, column)))
                    for api_name, column in Opportunity.SALESFORCE_COLUMNS.items()
                    if api_name not in STANDARD_FIELDS_SHOWN_ELSEWHERE
                ],
                "custom_fields": [
                    (definition, opportunity.custom_fields.get(definition.api_name))
                    for definition in active_custom_fields(("Opportunity",))
                ],
                "roles": list(opportunity_contact_roles(opportunity)),
                "page": page,
                "activity_rows": activity_rows(page, labels),
            }
        )
        return TemplateResponse(request, "admin/opportunities/opportunity/detail.html", context)


# The header of the opportunity page shows these; the field table lists the rest.
STANDARD_FIELDS_SHOWN_ELSEWHERE = {"Name", "Amount", "ExpectedRevenue", "StageName", "CurrencyIsoCode"}


@admin.register(ContactRole)
class ContactRoleAdmin(SyncedReadOnlyAdmin):
    list_display = ["sf_id", "opportunity", "person", "role", "is_primary", "is_deleted"]
    list_filter = ["is_primary", "is_deleted", ContactRoleRoleFilter]
    search_fields = ["sf_id__exact", "sf_contact_id__exact", "sf_opportunity_id__exact"]
    search_help_text = "A Salesforce contact role, contact or opportunity id"
    list_select_related = ["opportunity", "person"]
    raw_id_fields = ["opportunity", "person"]


@admin.register(Activity)
class ActivityAdmin(SyncedReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "activity_type",
        "person",
        "opportunity",
        "field",
        "previous_value",
        "new_value",
        "role",
        "is_primary",
    ]
    # A type and a date range are what people filter by; both are served by indexes that match
    # the ordering (newest first), so a page reads 50 rows, not millions.
    list_filter = ["activity_type", ("occurred_at", DateRangeFilter), "is_initial_load"]
    list_select_related = ["person", "opportunity"]
    raw_id_fields = ["person", "opportunity", "sync_cycle"]
    sortable_by = ["occurred_at"]


@admin.register(FieldDefinition)
class FieldDefinitionAdmin(SyncedReadOnlyAdmin):
    list_display = ["sobject", "api_name", "label", "field_type", "is_custom", "is_active", "last_seen_at"]
    list_filter = ["sobject", "field_type", "is_custom", "is_active"]
    search_fields = ["api_name", "label"]


@admin.register(SyncState)
class SyncStateAdmin(SyncedReadOnlyAdmin):
    list_display = [
        "sobject",
        "watermark",
        "deleted_checked_until",
        "last_reconciled_at",
        "initial_load_completed_at",
    ]


class SyncObjectRunInline(admin.TabularInline[Any, Any]):
    model = SyncObjectRun
    fields = [
        "sobject",
        "status",
        "created_count",
        "updated_count",
        "deleted_count",
        "skipped_count",
        "failed_count",
        "api_calls",
        "error_message",
    ]
    readonly_fields = fields  # type: ignore[assignment]  # the same names, all shown read-only
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SyncCycle)
class SyncCycleAdmin(SyncedReadOnlyAdmin):
    list_display = ["started_at", "ended_at", "status", "api_calls", "is_initial_load", "error_message"]
    list_filter = ["status", "is_initial_load"]
    inlines = [SyncObjectRunInline]


admin_page_register(SYNC_STATUS_PAGE)
