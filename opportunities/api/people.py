"""/api/v1/persons/ and a person's opportunities (the Opportunity Info tab).

Here, not in `people/`: a person's JSON carries the custom fields describe shows now, and one of
its routes lists the person's opportunities; the people app stays below this one."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from oppsync_site.api.common import ERROR_RESPONSES, NOT_FOUND, EstimatedPagination, read_only_schema
from people.api.filters import PersonFilter
from people.api.serializers import PersonSerializer
from people.models import Person

from ..selectors import person_opportunity_roles
from .mixins import SyncedDataContextMixin
from .serializers import PersonOpportunitySerializer


@read_only_schema("people", "person", PersonSerializer)
class PersonViewSet(SyncedDataContextMixin, viewsets.ReadOnlyModelViewSet[Person]):
    """People synced from Salesforce Contacts and Leads. Read-only: Salesforce owns them."""

    pagination_class = EstimatedPagination
    queryset = Person.objects.all().order_by("id")
    serializer_class = PersonSerializer
    filterset_class = PersonFilter

    @extend_schema(
        summary="A person's opportunities (the Opportunity Info tab)",
        responses={200: PersonOpportunitySerializer(many=True), **ERROR_RESPONSES, **NOT_FOUND},
        filters=False,
    )
    @action(detail=True, methods=["get"], filterset_class=None, serializer_class=PersonOpportunitySerializer)
    def opportunities(self, request: Request, pk: str | None = None) -> Response:
        person = self.get_object()
        roles: QuerySet = person_opportunity_roles(person)
        page = self.paginate_queryset(roles)
        serializer = PersonOpportunitySerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)
