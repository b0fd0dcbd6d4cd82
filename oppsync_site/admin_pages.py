"""Pieces the custom admin pages share: the page context, read-only detail views, and parsing of
the filters a page's URL carries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date

from opportunities.models import Activity, ActivityType

ACTIVITY_PAGE_SIZE = 50


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


@dataclass
class ActivityFilters:
    """The Activity Log's filters as the URL gives them, checked; `errors` says what was ignored."""

    activity_type: str
    date_from: str
    date_to: str
    occurred_from: dt.datetime | None
    occurred_before: dt.datetime | None
    errors: list[str]


def _start_of_day(day: dt.date) -> dt.datetime:
    # The subscription's time zone is active: "from 2026-11-01" means its midnight.
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def activity_filters_from(request: HttpRequest) -> ActivityFilters:
    errors = []
    activity_type = request.GET.get("type", "")
    if activity_type and activity_type not in ActivityType.values:
        errors.append(f"Unknown activity type {activity_type!r}; showing every type.")
        activity_type = ""
    bounds: dict[str, dt.datetime | None] = {"from": None, "to": None}
    raw = {"from": request.GET.get("from", ""), "to": request.GET.get("to", "")}
    for name, value in raw.items():
        if not value:
            continue
        try:
            day = parse_date(value)
        except ValueError:
            day = None
        if day is None:
            errors.append(f"{value!r} is not a date (YYYY-MM-DD); the {name!r} limit is ignored.")
            raw[name] = ""
            continue
        # "to" includes its whole day.
        bounds[name] = _start_of_day(day if name == "from" else day + dt.timedelta(days=1))
    return ActivityFilters(
        activity_type=activity_type,
        date_from=raw["from"],
        date_to=raw["to"],
        occurred_from=bounds["from"],
        occurred_before=bounds["to"],
        errors=errors,
    )


def paginate(request: HttpRequest, rows: QuerySet[Activity], per_page: int = ACTIVITY_PAGE_SIZE) -> Page[Any]:
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


def activity_rows(page: Page[Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """Activities as the log shows them: an update as `label: previous → new`."""
    rows = []
    for activity in page.object_list:
        rows.append(
            {
                "activity": activity,
                "field_label": labels.get(activity.field, activity.field),
            }
        )
    return rows
