"""ISO 4217 currency codes, names and symbols, from Babel's CLDR data (never a hand-typed list)."""

from __future__ import annotations

from functools import cache

from babel.core import get_global
from babel.numbers import (
    get_currency_name,
    get_currency_precision,
    get_currency_symbol,
    get_territory_currencies,
)
from django.core.exceptions import ValidationError


@cache
def currency_codes() -> frozenset[str]:
    """The ISO 4217 currencies legal tender somewhere today, from CLDR's territory data: no
    withdrawn codes (DEM, HRK), no precious metals or testing codes (XAU, XXX)."""
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(get_territory_currencies(territory, tender=True))
    return frozenset(codes)


def minor_units(code: str) -> int:
    """Digits after the decimal point the currency uses (JPY 0, EUR 2, KWD 3)."""
    return int(get_currency_precision(code))


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
