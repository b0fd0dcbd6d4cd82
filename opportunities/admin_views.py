"""The sync status page (Administrators only), plugged into the admin site by
`OppSyncAdminSite.get_urls()`; its panel refreshes itself every few seconds through htmx."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from oppsync_site.admin_site import SYNC_STATUS_PERMISSION

from .health import sync_health

REFRESH_SECONDS = 5


def _check(request: HttpRequest) -> None:
    if not request.user.has_perm(SYNC_STATUS_PERMISSION):
        raise PermissionDenied


def sync_status_view(request: HttpRequest) -> HttpResponse:
    _check(request)
    context = {
        **admin.site.each_context(request),
        "title": "Sync status",
        "health": sync_health(),
        "refresh_seconds": REFRESH_SECONDS,
    }
    return TemplateResponse(request, "admin/sync_status.html", context)


def sync_status_panel_view(request: HttpRequest) -> HttpResponse:
    """The page's body alone, for the self-refresh (no full reload)."""
    _check(request)
    context = {"health": sync_health(), "refresh_seconds": REFRESH_SECONDS}
    return TemplateResponse(request, "admin/sync_status_panel.html", context)
