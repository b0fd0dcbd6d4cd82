"""/api/v1/filters/ and /api/v1/smart-lists/ (contract §3): thin views over the registry,
`evaluate` and the smart-list services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opportunities.api.mixins import SyncedDataContextMixin
from oppsync_site.api.common import ERROR_RESPONSES, NOT_FOUND, Pagination
from oppsync_site.api.filters import KnownQueryParameters
from oppsync_site.api.permissions import RolePermission
from people.api.serializers import PersonSerializer
from people.models import Person

from ..evaluate import Evaluation, InactiveFieldsError, SmartListCycleError, evaluate
from ..models import SmartList
from ..registry import Catalog, catalog_json
from ..services import MEMBER_FIELDS, members, members_csv_rows, smart_list_save, smart_list_why
from ..validation import DefinitionError
from .serializers import DefinitionSerializer, SmartListSerializer

TRUE_WORDS = {"true": True, "1": True, "false": False, "0": False}


class InactiveFields(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "inactive_fields"


CONFLICT = {
    409: OpenApiResponse(
        inline_serializer(
            "InactiveFields",
            {
                "detail": serializers.CharField(),
                "warnings": serializers.ListField(child=serializers.CharField()),
            },
        ),
        description="The list names fields that are no longer synced; repeat with ?ignore_inactive_fields=true.",
    )
}
CATALOG_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "filter": {"type": "string"},
            "label": {"type": "string"},
            "group": {"type": "string"},
            "constraints": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
            "operators": {"type": "array", "items": {"type": "string"}},
            "value_type": {"type": "string"},
        },
        "required": ["filter", "label", "group", "constraints"],
        "additionalProperties": True,
    },
}
PREVIEW = inline_serializer(
    "Preview",
    {
        "count": serializers.IntegerField(),
        "count_is_estimate": serializers.BooleanField(help_text="always false: the count is exact"),
        "results": PersonSerializer(many=True),
    },
)
WHY = {"type": "object", "additionalProperties": True}
IGNORE_INACTIVE = OpenApiParameter(
    "ignore_inactive_fields", bool, description="evaluate without constraints on fields no longer synced"
)


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in TRUE_WORDS:
        raise ValidationError({name: ["must be true or false"]})
    return TRUE_WORDS[raw]


def _evaluate(request: Request, definition: Any, *, saved: bool = True) -> Evaluation:
    """Evaluate, turning every way a definition can be wrong into a clear 400 or 409.

    A saved list whose fields were deactivated since is a 409 the reader may confirm; an unsaved
    definition naming such a field is simply wrong (400), as saving it would be."""
    try:
        return evaluate(definition, ignore_inactive_fields=_flag(request, "ignore_inactive_fields"))
    except DefinitionError as error:
        raise ValidationError(error.errors) from error
    except SmartListCycleError as error:
        raise ValidationError({"filters": [str(error)]}) from error
    except InactiveFieldsError as error:
        if not saved:
            raise ValidationError({where: [message] for where, message in error.locations.items()}) from error
        raise InactiveFields(
            {
                "detail": "This list names fields that are no longer synced. Confirm with "
                "?ignore_inactive_fields=true to evaluate it without those constraints.",
                "warnings": error.warnings,
            }
        ) from error


class FilterCatalogView(APIView):
    """The filters, their constraints and operators, generated from the registry and describe."""

    permission_classes = [RolePermission]
    read_permission = "smartlists.view_smartlist"

    @extend_schema(
        summary="The smart-list filter catalog", responses={200: CATALOG_SCHEMA, **ERROR_RESPONSES}
    )
    def get(self, request: Request) -> Response:
        return Response(catalog_json(Catalog.load()))


@extend_schema_view(
    list=extend_schema(
        summary="List smart lists", responses={200: SmartListSerializer(many=True), **ERROR_RESPONSES}
    ),
    create=extend_schema(
        summary="Create a smart list", responses={201: SmartListSerializer, **ERROR_RESPONSES}
    ),
    retrieve=extend_schema(
        summary="One smart list", responses={200: SmartListSerializer, **ERROR_RESPONSES, **NOT_FOUND}
    ),
    update=extend_schema(
        summary="Replace a smart list", responses={200: SmartListSerializer, **ERROR_RESPONSES, **NOT_FOUND}
    ),
    partial_update=extend_schema(
        summary="Change a smart list", responses={200: SmartListSerializer, **ERROR_RESPONSES, **NOT_FOUND}
    ),
    destroy=extend_schema(
        summary="Delete a smart list", responses={204: None, **ERROR_RESPONSES, **NOT_FOUND}
    ),
)
class SmartListViewSet(SyncedDataContextMixin, viewsets.ModelViewSet[SmartList]):
    """Smart lists: Marketers and Administrators write, Viewers read."""

    # Exact counts: a list's count is the answer a marketer acts on, never an estimate.
    pagination_class = Pagination
    queryset = SmartList.objects.all().order_by("id")
    serializer_class = SmartListSerializer
    read_permission = "smartlists.view_smartlist"
    write_permission = "smartlists.change_smartlist"
    filterset_class = None
    filter_backends: list[Any] = [KnownQueryParameters]
    query_parameters = ("ignore_inactive_fields", "ordering")

    def _save(self, request: Request, instance: SmartList | None, partial: bool) -> Response:
        serializer = SmartListSerializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        current = instance.definition if instance else {}
        definition = {
            "logic": data.get("logic", current.get("logic", "all")),
            "filters": data.get("filters", current.get("filters")),
        }
        try:
            saved = smart_list_save(
                name=data.get("name", instance.name if instance else ""),
                description=data.get("description", instance.description if instance else ""),
                definition=definition,
                smart_list=instance,
                user=request.user,
            )
        except DefinitionError as error:
            raise ValidationError(error.errors) from error
        code = status.HTTP_201_CREATED if instance is None else status.HTTP_200_OK
        return Response(SmartListSerializer(saved).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._save(request, None, partial=False)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._save(request, self.get_object(), partial=kwargs.get("partial", False))

    @extend_schema(
        summary="A smart list's members (persons)",
        parameters=[OpenApiParameter("ordering", str, description="e.g. last_name,-email"), IGNORE_INACTIVE],
        responses={200: PersonSerializer(many=True), **ERROR_RESPONSES, **NOT_FOUND, **CONFLICT},
    )
    @action(detail=True, methods=["get"], serializer_class=PersonSerializer)
    def members(self, request: Request, pk: str | None = None) -> Response:
        evaluation = _evaluate(request, self.get_object().definition)
        ordering = request.query_params.get("ordering", "")
        people: QuerySet[Person] = members(
            evaluation, ordering=[o.strip() for o in ordering.split(",") if o.strip()]
        )
        page = self.paginate_queryset(people)  # type: ignore[arg-type]  # members are persons, not lists
        return self.get_paginated_response(
            PersonSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    @extend_schema(
        summary="Count and first page of an unsaved definition",
        request=DefinitionSerializer,
        responses={200: PREVIEW, **ERROR_RESPONSES},
    )
    @action(detail=False, methods=["post"], write_permission=None, serializer_class=DefinitionSerializer)
    def preview(self, request: Request) -> Response:
        serializer = DefinitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        evaluation = _evaluate(request, dict(serializer.validated_data), saved=False)
        people = members(evaluation)
        page = self.paginate_queryset(people)  # type: ignore[arg-type]  # members are persons, not lists
        assert isinstance(self.paginator, Pagination) and page is not None
        count, is_estimate = self.paginator.counted()
        return Response(
            {
                "count": count,
                "count_is_estimate": is_estimate,
                "results": PersonSerializer(page, many=True, context=self.get_serializer_context()).data,
            }
        )

    @extend_schema(
        summary="Why a person is (or is not) in the list", responses={200: dict, **ERROR_RESPONSES}
    )
    @action(detail=True, methods=["get"], url_path=r"members/(?P<person_id>\d+)/why")
    def why(self, request: Request, pk: str | None = None, person_id: str | None = None) -> Response:
        smart_list = self.get_object()
        person = get_object_or_404(Person, pk=person_id)
        return Response(smart_list_why(_evaluate(request, smart_list.definition), person))


class MembersCsvView(APIView):
    """`GET /api/v1/smart-lists/{id}/members.csv?fields=email,first_name`: all members, streamed."""

    permission_classes = [RolePermission]
    read_permission = "smartlists.view_smartlist"

    @extend_schema(
        summary="All members as CSV (streamed)",
        parameters=[
            OpenApiParameter("fields", str, description=f"comma-separated, from {', '.join(MEMBER_FIELDS)}")
        ],
        responses={(200, "text/csv"): str, **ERROR_RESPONSES},
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        smart_list = get_object_or_404(SmartList, pk=pk)
        fields = [
            f.strip()
            for f in request.query_params.get("fields", "email,first_name,last_name,company").split(",")
        ]
        unknown = [f for f in fields if f not in MEMBER_FIELDS]
        if unknown or not fields:
            raise ValidationError(
                {
                    "fields": [
                        f"unknown field {unknown[0]!r}; use {', '.join(MEMBER_FIELDS)}"
                        if unknown
                        else "name at least one field"
                    ]
                }
            )
        people = members(_evaluate(request, smart_list.definition))
        response = StreamingHttpResponse(
            members_csv_rows(people, fields), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="smart-list-{smart_list.pk}-members.csv"'
        return response
