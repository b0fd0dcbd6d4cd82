"""Template helpers for money, numbers, Salesforce values and sortable column headers.

Money is always in the subscription's default currency, formatted with Babel for the reader's
locale (set by SubscriptionContextMiddleware), e.g. "$12,500.00" or "12.500,00 €".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal, format_percent
from django import template
from django.http import QueryDict
from django.utils.html import format_html

from oppsync_site.middleware import DEFAULT_LOCALE, current_presentation, money_text
from oppsync_site.pagination import about

register = template.Library()


def _locale() -> str:
    presentation = current_presentation.get()
    return presentation.locale if presentation else DEFAULT_LOCALE


@register.simple_tag
def money(value: Decimal | float | int | None) -> str:
    """An amount in the default currency; empty when Salesforce has none."""
    return money_text(value)


@register.simple_tag
def number(value: Decimal | float | int | None) -> str:
    if value is None or value == "":
        return ""
    return format_decimal(value, locale=_locale())


@register.simple_tag
def result_count(changelist: Any) -> str:
    """A change list's count: "1,234", or "about 2,450,000" where it is PostgreSQL's estimate
    (oppsync_site/pagination.py), so an estimate never reads as a count."""
    count = changelist.result_count
    if getattr(changelist.paginator, "count_is_estimate", False):
        return format_html(
            '<span class="os-estimate" data-estimate="{}" title="{}">about {}</span>',
            count,
            "PostgreSQL's estimate: a list this big is not counted on every page",
            number(about(count)),
        )
    return number(count)


@register.simple_tag
def percent(value: Decimal | float | int | None) -> str:
    """Salesforce percent fields hold 0-100."""
    if value is None or value == "":
        return ""
    return format_percent(Decimal(value) / 100, locale=_locale())


@register.filter
def sf_value(value: Any) -> str:
    """A synced value as a person reads it: empty, Yes/No, or the value itself (escaped by the
    template engine like any string)."""
    if value is None or value == "":
        return "—"
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    return str(value)


@register.simple_tag(takes_context=True)
def sort_header(context: template.Context, key: str, label: str) -> str:
    """A column header linking to the same page sorted by `key`, flipping the direction when it is
    the current sort; the arrow shows the current one."""
    request = context["request"]
    current = context.get("sort", "")
    params: QueryDict = request.GET.copy()
    if current == key:
        params["sort"], arrow, state = f"-{key}", " ▲", "ascending"
    elif current == f"-{key}":
        params["sort"], arrow, state = key, " ▼", "descending"
    else:
        params["sort"], arrow, state = key, "", "none"
    return format_html(
        '<a class="sort-link" href="?{}" aria-sort="{}" data-sort-key="{}">{}{}</a>',
        params.urlencode(),
        state,
        key,
        label,
        arrow,
    )


@register.simple_tag(takes_context=True)
def tab_url(context: template.Context, tab: str) -> str:
    """The URL of the same object page with another tab selected (filters of the old tab dropped)."""
    params = QueryDict(mutable=True)
    params["tab"] = tab
    return f"?{params.urlencode()}"
