"""Pieces the custom admin pages share: the page context, a page of a table's rows, values as
the pages show them. What only the activity logs need is the opportunities app's
(opportunities/admin_pages.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

# Rows per page of the custom pages' tables (an object page's activity log).
PAGE_SIZE = 50


def admin_page_context(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, obj: Any, title: str
) -> dict[str, Any]:
    """What Django's own change form gives its template: site context, breadcrumbs, permissions."""
    if request.method not in ("GET", "HEAD"):
        # Synced data is read-only for everyone; the pages offer no form to post.
        raise PermissionDenied
    if not model_admin.has_view_permission(request, obj):
        raise PermissionDenied
    opts = model_admin.model._meta
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "original": obj,
        "object_id": obj.pk,
        "title": title,
        "subtitle": None,
        "has_view_permission": True,
        "has_change_permission": False,
        # The object pages use the whole width: Opportunity Info has thirteen columns.
        "is_nav_sidebar_enabled": False,
    }


def paginate(request: HttpRequest, rows: QuerySet[Any], per_page: int = PAGE_SIZE) -> Page[Any]:
    """A page of rows; a page number out of range or not a number shows the nearest page."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def display_value(value: Any) -> str:
    """A column value as the pages show it: datetimes in the subscription's time zone."""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)
