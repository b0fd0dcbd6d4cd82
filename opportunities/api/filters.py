"""Filters of the opportunity, contact-role and activity endpoints."""

from __future__ import annotations

import django_filters

from oppsync_site.api.filters import IdFilter, StrictBooleanFilter

from ..models import Activity, ActivityType, ContactRole, Opportunity


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
    since = django_filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="ISO 8601 date-time."
    )

    class Meta:
        model = Activity
        fields = ["person", "opportunity", "type", "since"]
