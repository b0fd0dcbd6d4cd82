"""Person admin: read-only, searchable."""

from __future__ import annotations

from django.contrib import admin

from oppsync_site.admin_mixins import SyncedReadOnlyAdmin

from .models import Person


@admin.register(Person)
class PersonAdmin(SyncedReadOnlyAdmin):
    list_display = [
        "__str__",
        "email",
        "company",
        "title",
        "lead_source",
        "sf_contact_id",
        "sf_lead_id",
        "is_deleted_in_salesforce",
    ]
    list_filter = ["is_deleted_in_salesforce", "lead_source"]
    search_fields = ["email", "first_name", "last_name", "company", "=sf_contact_id", "=sf_lead_id"]
    list_select_related = ["merged_into"]
    show_full_result_count = False
