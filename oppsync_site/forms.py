"""Forms of the site-wide admin pages."""

from __future__ import annotations

from django import forms

from .currencies import currency_choices
from .models import SubscriptionSettings


class SubscriptionSettingsForm(forms.ModelForm[SubscriptionSettings]):
    default_currency = forms.TypedChoiceField(
        choices=currency_choices,
        help_text="Every amount is shown in this currency, whatever Salesforce's CurrencyIsoCode says.",
        error_messages={
            "invalid_choice": "%(value)s is not an ISO 4217 currency code; pick one from the list "
            "(three upper-case letters such as USD, EUR or JPY)."
        },
    )

    class Meta:
        model = SubscriptionSettings
        fields = ["default_currency"]
