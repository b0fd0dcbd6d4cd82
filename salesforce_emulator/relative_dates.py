"""SOQL's relative date literals (`TODAY`, `LAST_N_DAYS:30`, `THIS_QUARTER`...) as date ranges.

Each literal names a range of whole days `[start, end)` in the org's time zone. The emulated org
runs on GMT with the fiscal year starting in January (Salesforce's default), so the fiscal
literals equal the calendar ones and weeks start on Sunday (the en_US locale). A comparison with a
literal compares against its range: `= X` inside it, `< X` before its start, `> X` after its end.
"""

from __future__ import annotations

import datetime as dt

# Literal -> (unit, kind); kind "this" (k = 0), "last"/"next" (one unit), "last_n"/"next_n"
# (n units before the current one / after it), "n_ago" (the unit n units back).
_FIXED: dict[str, tuple[str, str, int]] = {
    "YESTERDAY": ("day", "n_ago", 1),
    "TODAY": ("day", "this", 0),
    "TOMORROW": ("day", "next_n", 1),
    "LAST_WEEK": ("week", "n_ago", 1),
    "THIS_WEEK": ("week", "this", 0),
    "NEXT_WEEK": ("week", "next_n", 1),
    "LAST_MONTH": ("month", "n_ago", 1),
    "THIS_MONTH": ("month", "this", 0),
    "NEXT_MONTH": ("month", "next_n", 1),
    "LAST_90_DAYS": ("day", "last_n_with_today", 90),
    "NEXT_90_DAYS": ("day", "next_n", 90),
    "LAST_QUARTER": ("quarter", "n_ago", 1),
    "THIS_QUARTER": ("quarter", "this", 0),
    "NEXT_QUARTER": ("quarter", "next_n", 1),
    "LAST_YEAR": ("year", "n_ago", 1),
    "THIS_YEAR": ("year", "this", 0),
    "NEXT_YEAR": ("year", "next_n", 1),
    "LAST_FISCAL_QUARTER": ("quarter", "n_ago", 1),
    "THIS_FISCAL_QUARTER": ("quarter", "this", 0),
    "NEXT_FISCAL_QUARTER": ("quarter", "next_n", 1),
    "LAST_FISCAL_YEAR": ("year", "n_ago", 1),
    "THIS_FISCAL_YEAR": ("year", "this", 0),
    "NEXT_FISCAL_YEAR": ("year", "next_n", 1),
}
_WITH_N: dict[str, tuple[str, str]] = {
    # LAST_N_DAYS:n includes today (the documentation: "starts with the current day and continues
    # for the past n days"), unlike the other LAST_N_ literals, which end where the current unit starts.
    "LAST_N_DAYS": ("day", "last_n_with_today"),
    "NEXT_N_DAYS": ("day", "next_n"),
    "N_DAYS_AGO": ("day", "n_ago"),
    "LAST_N_WEEKS": ("week", "last_n"),
    "NEXT_N_WEEKS": ("week", "next_n"),
    "N_WEEKS_AGO": ("week", "n_ago"),
    "LAST_N_MONTHS": ("month", "last_n"),
    "NEXT_N_MONTHS": ("month", "next_n"),
    "N_MONTHS_AGO": ("month", "n_ago"),
    "LAST_N_QUARTERS": ("quarter", "last_n"),
    "NEXT_N_QUARTERS": ("quarter", "next_n"),
    "N_QUARTERS_AGO": ("quarter", "n_ago"),
    "LAST_N_YEARS": ("year", "last_n"),
    "NEXT_N_YEARS": ("year", "next_n"),
    "N_YEARS_AGO": ("year", "n_ago"),
    "LAST_N_FISCAL_QUARTERS": ("quarter", "last_n"),
    "NEXT_N_FISCAL_QUARTERS": ("quarter", "next_n"),
    "N_FISCAL_QUARTERS_AGO": ("quarter", "n_ago"),
    "LAST_N_FISCAL_YEARS": ("year", "last_n"),
    "NEXT_N_FISCAL_YEARS": ("year", "next_n"),
    "N_FISCAL_YEARS_AGO": ("year", "n_ago"),
}


def is_literal(name: str, number: str) -> bool:
    """`name` upper-cased; `number` the text after the colon ("" when there is none)."""
    if number:
        return name in _WITH_N and number.isdigit()
    return name in _FIXED


def _unit_start(day: dt.date, unit: str) -> dt.date:
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=(day.weekday() + 1) % 7)  # back to Sunday
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def _shift(start: dt.date, unit: str, count: int) -> dt.date:
    """`start` (a unit's first day) moved by `count` units."""
    if unit == "day":
        return start + dt.timedelta(days=count)
    if unit == "week":
        return start + dt.timedelta(weeks=count)
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * count
    index = start.year * 12 + start.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def date_range(name: str, n: int | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The literal's days as `[start, end)`."""
    if n is None:
        unit, kind, count = _FIXED[name]
    else:
        unit, kind = _WITH_N[name]
        count = n
    current = _unit_start(today, unit)
    if kind == "this":
        return current, _shift(current, unit, 1)
    if kind == "n_ago":
        start = _shift(current, unit, -count)
        return start, _shift(start, unit, 1)
    if kind == "last_n":
        return _shift(current, unit, -count), current
    if kind == "last_n_with_today":
        return _shift(current, unit, -count), _shift(current, unit, 1)
    # next_n: the n units after the current one.
    after = _shift(current, unit, 1)
    return after, _shift(after, unit, count)
