"""ISO 4217 currency codes, names and symbols, from Babel's CLDR data (never a hand-typed list)."""

from __future__ import annotations

from functools import cache

from babel.numbers import get_currency_name, get_currency_symbol, list_currencies
from django.core.exceptions import ValidationError


@cache
def currency_codes() -> frozenset[str]:
    """Every ISO 4217 code CLDR knows, e.g. {"EUR", "USD", ...}."""
    return frozenset(list_currencies())


def currency_choices() -> list[tuple[str, str]]:
    """Choices for a select box: ("EUR", "EUR — Euro (€)"), sorted by code."""
    return [(code, currency_label(code)) for code in sorted(currency_codes())]


def currency_label(code: str) -> str:
    return f"{code} — {get_currency_name(code, locale='en')} ({currency_symbol(code)})"


def currency_symbol(code: str) -> str:
    return get_currency_symbol(code, locale="en")


def validate_currency_code(value: str) -> None:
    """Accept only an exact upper-case ISO 4217 code: "usd" or "USD " are refused, not guessed."""
    if value not in currency_codes():
        raise ValidationError(
            "%(value)r is not an ISO 4217 currency code; use three upper-case letters such as "
            "USD, EUR or JPY.",
            code="invalid_currency",
            params={"value": value},
        )
