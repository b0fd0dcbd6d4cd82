"""Admin for the subscription settings (Administrators only) and worker heartbeats."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from .admin_mixins import SyncedReadOnlyAdmin
from .forms import SubscriptionSettingsForm
from .models import SubscriptionSettings, WorkerHeartbeat

admin.site.site_header = "OppSync"
admin.site.site_title = "OppSync"
admin.site.index_title = "Salesforce opportunities for marketing"


@admin.register(SubscriptionSettings)
class SubscriptionSettingsAdmin(admin.ModelAdmin[SubscriptionSettings]):
    """One settings page: the list view goes straight to the single row."""

    form = SubscriptionSettingsForm
    readonly_fields = ["currency_symbol", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        settings = SubscriptionSettings.load()
        return HttpResponseRedirect(
            reverse("admin:oppsync_site_subscriptionsettings_change", args=[settings.pk])
        )


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(SyncedReadOnlyAdmin):
    list_display = ["hostname", "last_beat_at", "beats"]
