from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from oppsync_site.currencies import validate_currency_code
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
