"""Filters of /api/v1/persons/."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from ..models import Person


class PersonFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(
        field_name="email", lookup_expr="iexact", help_text="Exact email, any case."
    )
    sf_id = django_filters.CharFilter(method="filter_sf_id", help_text="A Salesforce Contact or Lead id.")
    search = django_filters.CharFilter(method="filter_search", help_text="Part of a name, email or company.")

    class Meta:
        model = Person
        fields = ["email", "sf_id", "search"]

    def filter_sf_id(self, queryset: QuerySet[Person], name: str, value: str) -> QuerySet[Person]:
        return queryset.filter(Q(sf_contact_id=value) | Q(sf_lead_id=value))

    def filter_search(self, queryset: QuerySet[Person], name: str, value: str) -> QuerySet[Person]:
        condition = Q()
        for term in value.split():
            condition &= (
                Q(first_name__icontains=term)
                | Q(last_name__icontains=term)
                | Q(email__icontains=term)
                | Q(company__icontains=term)
            )
        return queryset.filter(condition)
