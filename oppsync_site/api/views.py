"""/api/v1/settings/: the subscription's settings; only Administrators change them."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..currencies import currency_symbol
from ..models import SubscriptionSettings
from ..services import subscription_settings_update
from .common import ERROR_RESPONSES
from .permissions import RolePermission


class SettingsSerializer(serializers.Serializer[SubscriptionSettings]):
    # Not trimmed: "USD " is refused, as every near-miss is, rather than guessed at.
    default_currency = serializers.CharField(
        max_length=3, trim_whitespace=False, help_text="ISO 4217 code, e.g. EUR."
    )
    currency_symbol = serializers.CharField(read_only=True)
    time_zone = serializers.CharField(max_length=64, help_text="IANA time zone, e.g. Europe/Amsterdam.")


class SettingsView(APIView):
    permission_classes = [RolePermission]
    read_permission = "oppsync_site.view_subscriptionsettings"
    write_permission = "oppsync_site.change_subscriptionsettings"
    queryset = SubscriptionSettings.objects.all()

    def _body(self, settings: SubscriptionSettings) -> dict[str, str]:
        return {
            "default_currency": settings.default_currency,
            "currency_symbol": currency_symbol(settings.default_currency),
            "time_zone": settings.time_zone,
        }

    @extend_schema(
        summary="The subscription's settings", responses={200: SettingsSerializer, **ERROR_RESPONSES}
    )
    def get(self, request: Request) -> Response:
        return Response(self._body(SubscriptionSettings.load()))

    @extend_schema(
        summary="Change the default currency or the time zone (Administrators only)",
        request=SettingsSerializer,
        responses={200: SettingsSerializer, **ERROR_RESPONSES},
        examples=[
            OpenApiExample(
                "Euro in Amsterdam",
                value={"default_currency": "EUR", "time_zone": "Europe/Amsterdam"},
                request_only=True,
            )
        ],
    )
    def patch(self, request: Request) -> Response:
        serializer = SettingsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = {
            name: serializer.validated_data[name]
            for name in ("default_currency", "time_zone")
            if name in serializer.validated_data
        }
        if not changes:
            return Response(self._body(SubscriptionSettings.load()))
        try:
            settings = subscription_settings_update(**changes)
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from error
        return Response(self._body(settings))
