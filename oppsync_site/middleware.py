"""Per-request presentation context: the subscription's time zone and the reader's locale."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation.trans_real import parse_accept_lang_header

from .models import SubscriptionSettings
from .timezones import zone

DEFAULT_LOCALE = "en_US"


@dataclass(frozen=True)
class Presentation:
    """How this request shows things: the subscription's currency and time zone, the reader's locale."""

    currency: str = "USD"
    locale: str = DEFAULT_LOCALE
    time_zone: str = "UTC"


# Per request (and per thread or task): admin list columns have no request to read it from.
current_presentation: ContextVar[Presentation | None] = ContextVar("current_presentation", default=None)


def money_text(value: Decimal | float | int | None) -> str:
    """An amount in the default currency for the current reader; empty when there is none."""
    if value is None or value == "":
        return ""
    presentation = current_presentation.get() or Presentation()
    return format_currency(Decimal(value), presentation.currency, locale=presentation.locale)


def babel_locale_from_request(request: HttpRequest) -> str:
    """The first language of the browser's Accept-Language that Babel knows, e.g. "de_DE".

    Money and numbers are formatted for the reader (1.234,50 € for a German browser), while the
    currency itself is always the subscription's.
    """
    for language, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        if language == "*":
            continue
        try:
            return str(Locale.parse(language.replace("-", "_")))
        except (UnknownLocaleError, ValueError):
            continue
    return DEFAULT_LOCALE


class SubscriptionContextMiddleware:
    """Activate the subscription's time zone for the request, so every page and every API date
    shows in it, and remember the reader's locale for money and numbers (`current_presentation`).

    One small query per request (the settings row): a change in the settings shows on the very
    next page, in every process, without cache invalidation.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        subscription = SubscriptionSettings.load()
        request.subscription = subscription  # type: ignore[attr-defined]  # read by templates and views
        timezone.activate(zone(subscription.time_zone))
        token = current_presentation.set(
            Presentation(
                subscription.default_currency, babel_locale_from_request(request), subscription.time_zone
            )
        )
        try:
            return self.get_response(request)
        finally:
            current_presentation.reset(token)
            timezone.deactivate()
