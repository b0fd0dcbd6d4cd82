"""Serializer context every read endpoint of synced data needs, computed once per request: the
subscription's currency (the kernel's) and the custom fields describe shows now (this app's)."""

from __future__ import annotations

from typing import Any

from oppsync_site.api.common import currency_context

from ..selectors import active_custom_field_names


def synced_data_context() -> dict[str, Any]:
    """What the synced-data serializers need: the currency, and the custom fields describe shows
    now. Read once and passed to every serializer of a request (or of a batch of webhooks)."""
    return {
        **currency_context(),
        "custom_field_names": {
            sobject: active_custom_field_names(sobject) for sobject in ("Opportunity", "Contact", "Lead")
        },
    }


class SyncedDataContextMixin:
    def get_serializer_context(self) -> dict[str, Any]:
        context: dict[str, Any] = super().get_serializer_context()  # type: ignore[misc]  # a GenericAPIView mixin
        if "currency" not in getattr(self, "_synced_context", {}):
            self._synced_context = synced_data_context()
        return {**context, **self._synced_context}
