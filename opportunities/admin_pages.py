"""What the activity logs of the person and opportunity pages share: the filters their URL
carries, checked, and their rows. The page shell itself is the kernel's (oppsync_site/admin_pages.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page
from django.http import HttpRequest
from django.utils.dateparse import parse_date

from oppsync_site.admin_filters import EARLIEST_DAY, LATEST_DAY, start_of_day

from .models import ActivityType


@dataclass
class ActivityFilters:
    """The Activity Log's filters as the URL gives them, checked; `errors` says what was ignored."""

    activity_type: str
    date_from: str
    date_to: str
    occurred_from: dt.datetime | None
    occurred_before: dt.datetime | None
    errors: list[str]


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
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            # 9999-12-31 has no next day, and 0001-01-01 east of UTC no midnight in UTC.
            errors.append(
                f"{value!r} is outside {EARLIEST_DAY} to {LATEST_DAY}; the {name!r} limit is ignored."
            )
            raw[name] = ""
            continue
        # "to" includes its whole day.
        bounds[name] = start_of_day(day if name == "from" else day + dt.timedelta(days=1))
    return ActivityFilters(
        activity_type=activity_type,
        date_from=raw["from"],
        date_to=raw["to"],
        occurred_from=bounds["from"],
        occurred_before=bounds["to"],
        errors=errors,
    )


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
