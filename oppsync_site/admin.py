"""Admin for the subscription settings (Administrators only) and worker heartbeats."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from .admin_mixins import SyncedReadOnlyAdmin
from .admin_users import register as register_user_and_token_admins
from .forms import SubscriptionSettingsForm
from .models import SubscriptionSettings, WorkerHeartbeat


@admin.register(SubscriptionSettings)
class SubscriptionSettingsAdmin(admin.ModelAdmin[SubscriptionSettings]):
    """One settings page: the list view goes straight to the single row."""

    form = SubscriptionSettingsForm
    readonly_fields = ["currency_symbol", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Only Administrators see the settings page at all (403 for others, by direct URL too);
        # every page and the API still read the currency and time zone it sets.
        return self.has_change_permission(request, obj)

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


# Users and API tokens, safe for Administrators who are not superusers (admin_users.py); runs
# after django.contrib.auth and rest_framework.authtoken registered their own admins.
register_user_and_token_admins(admin.site)
