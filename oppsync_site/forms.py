"""Forms of the site-wide admin pages."""

from __future__ import annotations

from django import forms

from .currencies import currency_choices
from .models import SubscriptionSettings
from .timezones import time_zone_choices


class SubscriptionSettingsForm(forms.ModelForm[SubscriptionSettings]):
    default_currency = forms.TypedChoiceField(
        choices=currency_choices,
        help_text="Every amount is shown in this currency, whatever Salesforce's CurrencyIsoCode says.",
        error_messages={
            "invalid_choice": "%(value)s is not an ISO 4217 currency code; pick one from the list "
            "(three upper-case letters such as USD, EUR or JPY)."
        },
    )

    time_zone = forms.TypedChoiceField(
        choices=time_zone_choices,
        help_text="Dates on every page show in this zone; smart lists count relative dates and time "
        "frames (today, this quarter) in it.",
        error_messages={
            "invalid_choice": "%(value)s is not an IANA time zone; pick one from the list "
            "(such as UTC, Europe/Amsterdam or America/New_York)."
        },
    )

    class Meta:
        model = SubscriptionSettings
        fields = ["default_currency", "time_zone"]
