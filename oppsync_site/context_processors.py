"""Template context every page needs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .currencies import currency_symbol


def subscription(request: HttpRequest) -> dict[str, Any]:
    settings = getattr(request, "subscription", None)
    if settings is None:
        return {}
    return {
        "subscription": settings,
        "default_currency": settings.default_currency,
        "default_currency_symbol": currency_symbol(settings.default_currency),
    }
