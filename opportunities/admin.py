"""Admin for synced opportunity data (read-only for everyone) and sync health."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from oppsync_site.admin_mixins import SyncedReadOnlyAdmin

from .models import (
    Activity,
    ContactRole,
    FieldDefinition,
    Opportunity,
    SyncCycle,
    SyncObjectRun,
    SyncState,
)


class ContactRoleInline(admin.TabularInline[Any, Any]):
    model = ContactRole
    fields = ["person", "sf_contact_id", "role", "is_primary", "is_deleted"]
    readonly_fields = ["person", "sf_contact_id", "role", "is_primary", "is_deleted"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Opportunity)
class OpportunityAdmin(SyncedReadOnlyAdmin):
    list_display = [
        "name",
        "account_name",
        "stage_name",
        "amount",
        "close_date",
        "is_closed",
        "is_won",
        "is_deleted",
    ]
    list_filter = ["is_closed", "is_won", "is_deleted", "stage_name", "type"]
    search_fields = ["name", "account_name", "=sf_id"]
    date_hierarchy = "close_date"
    inlines = [ContactRoleInline]
    show_full_result_count = False


@admin.register(ContactRole)
class ContactRoleAdmin(SyncedReadOnlyAdmin):
    list_display = ["sf_id", "opportunity", "person", "role", "is_primary", "is_deleted"]
    list_filter = ["is_primary", "is_deleted", "role"]
    search_fields = ["=sf_id", "=sf_contact_id", "=sf_opportunity_id", "opportunity__name"]
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
        "is_initial_load",
    ]
    list_filter = ["activity_type", "is_initial_load", "field"]
    search_fields = ["person__email", "opportunity__name", "field"]
    list_select_related = ["person", "opportunity"]
    raw_id_fields = ["person", "opportunity", "sync_cycle"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


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
