"""Filters of the opportunity, contact-role and activity endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from oppsync_site.api.filters import IdFilter, StrictBooleanFilter

from ..models import Activity, ActivityType, ContactRole, Opportunity


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time that exists in UTC, as the database compares it: 0001-01-01T00:00
    at +01:00 lies before year 1 there (converting it raised OverflowError, a 500), and so does
    9999-12-31T23:00 at -02:00 after year 9999."""

    def to_python(self, value: Any) -> dt.datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(
                f"{value} lies outside the date-times that exist in UTC (years 1 to 9999); "
                "give an ISO 8601 date-time such as 2026-01-31T09:00:00+01:00",
                code="out_of_range",
            ) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class OpportunityFilter(django_filters.FilterSet):
    sf_id = django_filters.CharFilter(field_name="sf_id", help_text="Salesforce Opportunity id.")
    stage = django_filters.CharFilter(field_name="stage_name", help_text="Stage, exactly as in Salesforce.")
    is_closed = StrictBooleanFilter(field_name="is_closed")
    is_won = StrictBooleanFilter(field_name="is_won")
    has_contact_roles = StrictBooleanFilter(
        field_name="has_contact_roles", help_text="Whether anybody is linked through a live contact role."
    )

    class Meta:
        model = Opportunity
        fields = ["sf_id", "stage", "is_closed", "is_won", "has_contact_roles"]


class ContactRoleFilter(django_filters.FilterSet):
    opportunity = IdFilter(field_name="opportunity_id", help_text="OppSync opportunity id.")
    person = IdFilter(field_name="person_id", help_text="OppSync person id.")

    class Meta:
        model = ContactRole
        fields = ["opportunity", "person"]


class ActivityFilter(django_filters.FilterSet):
    person = IdFilter(field_name="person_id", help_text="OppSync person id.")
    opportunity = IdFilter(field_name="opportunity_id", help_text="OppSync opportunity id.")
    type = django_filters.ChoiceFilter(field_name="activity_type", choices=ActivityType.choices)
    since = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte", help_text="ISO 8601 date-time.")

    class Meta:
        model = Activity
        fields = ["person", "opportunity", "type", "since"]
