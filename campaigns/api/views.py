"""/api/v1/campaigns/ and their deliveries (contract §3): thin views over `services` and
`webhooks`. Marketers and Administrators write, Viewers read."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from oppsync_site.api.common import ERROR_RESPONSES, NOT_FOUND
from oppsync_site.api.filters import KnownQueryParameters
from smartlists.validation import DefinitionError

from ..models import Campaign, Delivery, DeliveryStatus
from ..selectors import campaigns_with_delivery_counts
from ..services import campaign_save
from ..tasks import delivery_queue
from ..webhooks import resend, sample_delivery_create
from .serializers import CampaignSerializer, DeliverySerializer

STATUS_PARAMETER = OpenApiParameter("status", str, enum=[s.value for s in DeliveryStatus])


ANSWERS = {**ERROR_RESPONSES, **NOT_FOUND}


@extend_schema_view(
    list=extend_schema(
        summary="Trigger campaigns", responses={200: CampaignSerializer(many=True), **ANSWERS}
    ),
    create=extend_schema(
        summary="Create a trigger campaign", responses={201: CampaignSerializer, **ERROR_RESPONSES}
    ),
    retrieve=extend_schema(summary="A trigger campaign", responses={200: CampaignSerializer, **ANSWERS}),
    update=extend_schema(
        summary="Replace a trigger campaign", responses={200: CampaignSerializer, **ANSWERS}
    ),
    partial_update=extend_schema(
        summary="Change a trigger campaign", responses={200: CampaignSerializer, **ANSWERS}
    ),
    destroy=extend_schema(summary="Delete a trigger campaign", responses={204: None, **ANSWERS}),
)
class CampaignViewSet(viewsets.ModelViewSet[Campaign]):
    """Trigger campaigns with their triggers, smart list, qualification rule and webhook."""

    serializer_class = CampaignSerializer
    read_permission = "campaigns.view_campaign"
    write_permission = "campaigns.change_campaign"
    filterset_class = None
    filter_backends: list[Any] = [KnownQueryParameters]

    queryset = Campaign.objects.all()

    def get_queryset(self) -> QuerySet[Campaign]:
        return campaigns_with_delivery_counts().order_by("id")

    def _save(self, request: Request, instance: Campaign | None, partial: bool) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"campaign": ["must be a JSON object"]})
        unknown = set(request.data) - set(CampaignSerializer().fields) - {"webhook"}
        if unknown:
            raise ValidationError({sorted(unknown)[0]: ["is not a campaign field"]})
        if instance is not None and not partial:
            missing = {"name", "triggers", "webhook"} - set(request.data)
            if missing:
                raise ValidationError(
                    {name: ["is required (use PATCH to change some fields)"] for name in missing}
                )
        try:
            campaign, secret = campaign_save(campaign=instance, data=dict(request.data), user=request.user)
        except DefinitionError as error:
            raise ValidationError(error.errors) from error
        campaign = self.get_queryset().get(pk=campaign.pk)
        body = CampaignSerializer(campaign).data
        if secret:
            body["webhook"]["secret"] = secret  # shown this once; never readable again
        return Response(body, status=status.HTTP_201_CREATED if instance is None else status.HTTP_200_OK)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._save(request, None, partial=False)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._save(request, self.get_object(), partial=kwargs.get("partial", False))

    @extend_schema(
        summary="Send a test delivery", request=None, responses={202: DeliverySerializer, **ANSWERS}
    )
    @action(detail=True, methods=["post"], url_path="test-delivery")
    def test_delivery(self, request: Request, pk: str | None = None) -> Response:
        delivery = sample_delivery_create(self.get_object())
        delivery_queue(delivery.pk)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Delivery]):
    """A campaign's webhook deliveries, newest first, with every attempt; `?status=failed`."""

    serializer_class = DeliverySerializer
    read_permission = "campaigns.view_campaign"
    write_permission = "campaigns.change_campaign"
    filterset_class = None
    filter_backends: list[Any] = [KnownQueryParameters]
    query_parameters = ("status",)
    queryset = Delivery.objects.all()

    def get_queryset(self) -> QuerySet[Delivery]:
        campaign = get_object_or_404(Campaign, pk=self.kwargs["campaign_pk"])
        deliveries = (
            Delivery.objects.filter(campaign=campaign)
            .prefetch_related("attempts")
            .order_by("-created_at", "-id")
        )
        wanted = self.request.query_params.get("status")
        if wanted is not None:
            if wanted not in DeliveryStatus.values:
                raise ValidationError({"status": [f"must be one of {', '.join(DeliveryStatus.values)}"]})
            deliveries = deliveries.filter(status=wanted)
        return deliveries

    @extend_schema(
        summary="A campaign's deliveries",
        parameters=[STATUS_PARAMETER],
        responses={200: DeliverySerializer(many=True), **ANSWERS},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One delivery with its attempts", responses={200: DeliverySerializer, **ANSWERS})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Send a delivery again (same body and idempotency key)",
        request=None,
        responses={202: DeliverySerializer, **ANSWERS},
    )
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        delivery = self.get_object()
        if delivery.status == DeliveryStatus.PENDING:
            raise ValidationError({"status": ["is pending: it is being sent already"]})
        delivery = resend(delivery)
        delivery_queue(delivery.pk)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
