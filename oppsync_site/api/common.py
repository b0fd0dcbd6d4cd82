"""What every endpoint of the REST API shares: pagination, permissions by role, JSON errors, and
the OpenAPI descriptions of errors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler

from oppsync_site.currencies import currency_symbol
from oppsync_site.middleware import current_presentation
from oppsync_site.models import SubscriptionSettings
from oppsync_site.pagination import EstimatedCountPaginator, ExactCountPaginator


class Pagination(PageNumberPagination):
    """`{"count", "count_is_estimate", "next", "previous", "results"}`; `page_size` may be given,
    at most 1000.

    `count` is exact and `count_is_estimate` false, except on the lists that use
    EstimatedPagination.
    """

    django_paginator_class = ExactCountPaginator
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        # ASCII digits only: "²".isdigit() is True, and int("²") fails.
        if raw is not None and (
            not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size
        ):
            raise ValidationError(
                {"page_size": [f"page_size must be a whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw) if raw else self.page_size

    def counted(self) -> tuple[int, bool]:
        """The page's `count`, and whether it is PostgreSQL's estimate rather than a count."""
        assert self.page is not None, "paginate_queryset comes first"
        paginator = self.page.paginator
        return paginator.count, isinstance(paginator, ExactCountPaginator) and paginator.count_is_estimate

    def get_paginated_response(self, data: Any) -> Response:
        count, is_estimate = self.counted()
        return Response(
            {
                "count": count,
                "count_is_estimate": is_estimate,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        described: dict[str, Any] = super().get_paginated_response_schema(schema)
        described["required"] = [*described["required"], "count_is_estimate"]
        described["properties"]["count_is_estimate"] = {
            "type": "boolean",
            "description": "true when `count` is PostgreSQL's estimate of a big list of synced data "
            "rather than a count; false when it is exact",
            "example": False,
        }
        return described


class EstimatedPagination(Pagination):
    """For plain lists of synced tables (people, opportunities, contact roles, activities):
    `count` is PostgreSQL's estimate where the planner expects more than 100,000 rows (counting
    five million activities exactly would cost seconds on every page), and then
    `count_is_estimate` is true."""

    django_paginator_class = EstimatedCountPaginator


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every error body naming the problem under `detail` or per field."""
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, APIException):
        return response
    if isinstance(response.data, list):
        response.data = {"detail": response.data}
    if response.status_code == 400 and isinstance(response.data, dict):
        # A 400 always lists its problems per key, so clients parse one shape.
        response.data = {
            key: value if isinstance(value, list) else [value] for key, value in response.data.items()
        }
    return response


def currency_context() -> dict[str, str]:
    # The middleware read the settings row for this request already; outside a request, read it.
    presentation = current_presentation.get()
    code = presentation.currency if presentation else SubscriptionSettings.load().default_currency
    return {"currency": code, "currency_symbol": currency_symbol(code)}


ERROR_SERIALIZER = inline_serializer("Error", {"detail": serializers.CharField()})
ERROR_RESPONSES = {
    400: OpenApiResponse(
        {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Each key is a parameter or field; its value lists what is wrong with it.",
        },
        description="Bad input: the body names each problem by parameter or field.",
        examples=[
            OpenApiExample(
                "Bad filter value",
                value={"type": ["Select a valid choice. foo is not one of the available choices."]},
            )
        ],
    ),
    401: OpenApiResponse(
        ERROR_SERIALIZER,
        description="No or invalid credentials.",
        examples=[
            OpenApiExample(
                "Unauthenticated", value={"detail": "Authentication credentials were not provided."}
            )
        ],
    ),
    403: OpenApiResponse(
        ERROR_SERIALIZER,
        description="Your role does not allow this.",
        examples=[OpenApiExample("Forbidden", value={"detail": "Your role does not allow this."})],
    ),
    404: OpenApiResponse(
        ERROR_SERIALIZER,
        description="No such object, or no such page.",
        examples=[OpenApiExample("Not found", value={"detail": "Invalid page."})],
    ),
    429: OpenApiResponse(
        ERROR_SERIALIZER,
        description="Too many requests; retry after the given seconds.",
        examples=[
            OpenApiExample(
                "Throttled", value={"detail": "Request was throttled. Expected available in 30 seconds."}
            )
        ],
    ),
}
NOT_FOUND = {
    404: OpenApiResponse(
        ERROR_SERIALIZER,
        description="No such object.",
        examples=[OpenApiExample("Not found", value={"detail": "No Person matches the given query."})],
    )
}


def read_only_schema(plural: str, singular: str, serializer: type[serializers.Serializer[Any]]) -> Any:
    """OpenAPI for a read-only viewset: its list and retrieve, with their errors."""
    return extend_schema_view(
        list=extend_schema(
            summary=f"List {plural}", responses={200: serializer(many=True), **ERROR_RESPONSES}
        ),
        retrieve=extend_schema(
            summary=f"One {singular}", responses={200: serializer, **ERROR_RESPONSES, **NOT_FOUND}
        ),
    )
