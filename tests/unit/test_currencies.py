from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from oppsync_site.currencies import currency_codes, minor_units, validate_currency_code
from oppsync_site.services import subscription_settings_update


@pytest.mark.parametrize("code", ["USD", "EUR", "JPY", "CHF"])
def test_real_codes_are_accepted(code):
    validate_currency_code(code)


@pytest.mark.parametrize("code", ["XYZ", "usd ", "usd", "US", "", "EURO"])
def test_anything_else_is_refused_with_a_message_that_names_it(code):
    with pytest.raises(ValidationError) as error:
        validate_currency_code(code)
    assert repr(code) in str(error.value)
    assert "ISO 4217" in str(error.value)


@pytest.mark.django_db
def test_the_settings_service_refuses_a_bad_code_and_keeps_the_old_one():
    subscription_settings_update(default_currency="EUR")
    with pytest.raises(ValidationError):
        subscription_settings_update(default_currency="XYZ")
    from oppsync_site.models import SubscriptionSettings

    assert SubscriptionSettings.load().default_currency == "EUR"


def test_the_list_offers_current_currencies_only():
    codes = currency_codes()
    assert {"USD", "EUR", "JPY", "GBP", "CHF", "SLE", "VES"} <= codes
    assert not {"XXX", "XAU", "XTS", "DEM", "FRF", "HRK", "SLL"} & codes  # test, metal, withdrawn
    assert minor_units("JPY") == 0 and minor_units("EUR") == 2 and minor_units("KWD") == 3


@pytest.mark.parametrize("code", ["DEM", "XAU", "XXX"])
def test_withdrawn_and_non_money_codes_are_refused(code):
    with pytest.raises(ValidationError):
        validate_currency_code(code)


@pytest.mark.django_db
def test_the_api_refuses_a_code_with_a_space_instead_of_trimming_it(administrator):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(administrator)
    for near_miss in ("USD ", " USD", "usd"):
        response = client.patch("/api/v1/settings/", {"default_currency": near_miss}, format="json")
        assert response.status_code == 400, near_miss
        assert "default_currency" in response.json()
    assert client.patch("/api/v1/settings/", {"default_currency": "JPY"}, format="json").status_code == 200


@pytest.mark.django_db
def test_yen_amounts_have_no_minor_units_on_the_pages():
    from decimal import Decimal

    from oppsync_site.middleware import Presentation, current_presentation, money_text

    token = current_presentation.set(Presentation(currency="JPY", locale="en_US"))
    try:
        assert money_text(Decimal("12500.00")) == "¥12,500"
    finally:
        current_presentation.reset(token)
