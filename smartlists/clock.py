"""Now, today and the calendar arithmetic of relative dates and time frames, in the
subscription's time zone: what the date operators (`operators.py`) and the stored activity
windows (`evaluate.py`) compute their moments from.

Arithmetic stops at the ends of the calendar instead of raising (`EARLIEST`, `LATEST`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from oppsync_site.middleware import current_presentation
from oppsync_site.models import SubscriptionSettings
from oppsync_site.timezones import zone

if TYPE_CHECKING:
    from .registry import FieldType


@dataclass(frozen=True)
class Clock:
    """Now, today and midnights in the subscription's time zone."""

    now: dt.datetime
    tz: dt.tzinfo

    @classmethod
    def current(cls, now: dt.datetime | None = None) -> Clock:
        # In a request the middleware has read the settings already; elsewhere (tasks) read them.
        presentation = current_presentation.get()
        name = presentation.time_zone if presentation else SubscriptionSettings.load().time_zone
        return cls(now or timezone.now(), zone(name))

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.tz).date()

    def midnight(self, day: dt.date) -> dt.datetime:
        """The first moment of `day` in the subscription's zone, in UTC (stopping at the ends of
        the calendar: the midnight of 0001-01-01 east of UTC lies before it)."""
        return _or_edge(
            lambda: dt.datetime.combine(day, dt.time.min, tzinfo=self.tz).astimezone(dt.UTC),
            EARLIEST if day.year == dt.MINYEAR else LATEST,
        )


# The ends of the calendar, where window arithmetic stops instead of raising. Validation keeps
# every value between 1700 and 4000 (the dates Salesforce stores), so only a clock or a rule far
# outside that range ever reaches them.
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


def _or_edge(compute: Callable[[], Any], edge: Any) -> Any:
    """`compute()`, or `edge` where it leaves the calendar (OverflowError; ValueError for a
    year out of range)."""
    try:
        return compute()
    except (OverflowError, ValueError):
        return edge


def next_day(day: dt.date) -> dt.date:
    return _or_edge(lambda: day + dt.timedelta(days=1), dt.date.max)


def add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def _shift(moment: Any, amount: int, unit: str) -> Any:
    if unit == "day":
        return moment + dt.timedelta(days=amount)
    if unit == "week":
        return moment + dt.timedelta(weeks=amount)
    months = amount * (12 if unit == "year" else 1)
    if isinstance(moment, dt.datetime):
        # timetz(): the zone stays, so the wall-clock time does (and its offset follows the date).
        return dt.datetime.combine(add_months(moment.date(), months), moment.timetz())
    return add_months(moment, months)


def shift(moment: Any, amount: int, unit: str, tz: dt.tzinfo | None = None) -> Any:
    """`moment` (a date or datetime) moved by `amount` days, weeks, months or years.

    A datetime moves on the wall clock of `tz` (the subscription's zone), then comes back in UTC:
    "in past 1 month" at 05:00 on 1 March in Tokyo starts at 05:00 on 1 February in Tokyo, not a
    month before the UTC date (28 February). Past the ends of the calendar it stops at them."""
    if isinstance(moment, dt.datetime):
        local = moment.astimezone(tz) if tz is not None and timezone.is_aware(moment) else moment
        return _or_edge(
            lambda: _shift(local, amount, unit).astimezone(dt.UTC),
            LATEST if amount > 0 else EARLIEST,
        )
    return _or_edge(lambda: _shift(moment, amount, unit), dt.date.max if amount > 0 else dt.date.min)


def time_frame(name: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """[first day, day after the last) of a named frame; weeks start on Monday (ISO 8601)."""
    if name in ("today", "yesterday"):
        day = today - dt.timedelta(days=0 if name == "today" else 1)
        return day, day + dt.timedelta(days=1)
    if name in ("this_week", "last_week"):
        start = today - dt.timedelta(days=today.weekday() + (7 if name == "last_week" else 0))
        return start, start + dt.timedelta(days=7)
    if name in ("this_month", "last_month"):
        start = add_months(today.replace(day=1), 0 if name == "this_month" else -1)
        return start, add_months(start, 1)
    if name in ("this_quarter", "last_quarter"):
        start = add_months(
            today.replace(day=1, month=(today.month - 1) // 3 * 3 + 1), 0 if name == "this_quarter" else -3
        )
        return start, add_months(start, 3)
    start = today.replace(month=1, day=1)
    if name == "last_year":
        start = start.replace(year=start.year - 1)
    return start, start.replace(year=start.year + 1)


def day_bounds(day: Any, kind: FieldType, clock: Clock) -> tuple[Any, Any]:
    """The first moment of `day` and the first after it, in the field's own terms."""
    if isinstance(day, dt.datetime):
        moment = day if timezone.is_aware(day) else day.replace(tzinfo=clock.tz)
        # In UTC, as the database takes them; 9999-12-31T23:59:59.999999 has no next moment.
        first = _or_edge(lambda: moment.astimezone(dt.UTC), EARLIEST if moment.year == dt.MINYEAR else LATEST)
        return first, _or_edge(lambda: first + dt.timedelta(microseconds=1), LATEST)
    if kind == "datetime":
        return clock.midnight(day), clock.midnight(next_day(day))
    return day, next_day(day)
