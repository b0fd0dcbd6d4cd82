"""Pieces the custom admin pages share: the page context, a page of a table's rows, values as
the pages show them. What only the activity logs need is the opportunities app's
(opportunities/admin_pages.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone

# Rows per page of the custom pages' tables (an object page's activity log).
PAGE_SIZE = 50


def custom_page_context(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, title: str
) -> dict[str, Any]:
    """What every custom page of a model admin gives its template: the site context, the model's
    options (breadcrumbs) and its title, on the whole width (no navigation sidebar)."""
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        # The pages use the whole width: tables such as Opportunity Info have thirteen columns.
        "is_nav_sidebar_enabled": False,
    }


def object_page_urls(
    model_admin: admin.ModelAdmin[Any], *pages: tuple[str, Callable[..., HttpResponse], str]
) -> list[URLPattern]:
    """The URLs of a model admin's own pages of one object: each `(route, view, name)` below
    `<int:object_id>/`, behind the admin's login, named `<app>_<model>_<name>` as Django names the
    admin's own pages (so `admin:smartlists_smartlist_members` reverses `members`)."""
    opts = model_admin.model._meta
    return [
        path(
            f"<int:object_id>/{route}",
            model_admin.admin_site.admin_view(view),
            name=f"{opts.app_label}_{opts.model_name}_{name}",
        )
        for route, view, name in pages
    ]


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
        **custom_page_context(model_admin, request, title),
        "app_label": opts.app_label,
        "original": obj,
        "object_id": obj.pk,
        "subtitle": None,
        "has_view_permission": True,
        "has_change_permission": False,
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
