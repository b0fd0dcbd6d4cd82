"""The sync status page (Administrators only), registered on the admin site by
`opportunities/admin.py`; its panel refreshes itself every few seconds through htmx."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from oppsync_site.admin_site import AdminPage

from .health import sync_health

REFRESH_SECONDS = 5


def sync_status_view(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Sync status",
        "health": sync_health(),
        "refresh_seconds": REFRESH_SECONDS,
    }
    return TemplateResponse(request, "admin/sync_status.html", context)


def sync_status_panel_view(request: HttpRequest) -> HttpResponse:
    """The page's body alone, for the self-refresh (no full reload)."""
    context = {"health": sync_health(), "refresh_seconds": REFRESH_SECONDS}
    return TemplateResponse(request, "admin/sync_status_panel.html", context)


# The site checks the permission on both views and shows the entry only to those who have it.
SYNC_STATUS_PAGE = AdminPage(
    title="Sync status",
    object_name="SyncStatus",
    permission="opportunities.view_synccycle",
    views=(
        ("sync-status/", sync_status_view, "sync_status"),
        ("sync-status/panel/", sync_status_panel_view, "sync_status_panel"),
    ),
)
