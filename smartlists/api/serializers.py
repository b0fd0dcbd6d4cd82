"""Smart-list JSON (contract §3 and §4): the definition's `logic` and `filters` sit beside the name."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import SmartList


class SmartListSerializer(serializers.ModelSerializer[SmartList]):
    logic = serializers.JSONField(
        default=lambda: "all",  # type: ignore[arg-type,return-value]  # a JSON string is a JSON value too
        help_text='"all", "any", or a rule such as "1 and (2 or 3)"',
    )
    filters = serializers.JSONField(help_text="The filters of contract §4; see GET /api/v1/filters/.")
    member_count_url = serializers.SerializerMethodField()

    class Meta:
        model = SmartList
        fields = [
            "id",
            "name",
            "description",
            "logic",
            "filters",
            "created_at",
            "updated_at",
            "member_count_url",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_representation(self, instance: SmartList) -> dict[str, Any]:
        body = {
            "id": instance.pk,
            "name": instance.name,
            "description": instance.description,
            "logic": instance.definition.get("logic", "all"),
            "filters": instance.definition.get("filters", []),
            "created_at": serializers.DateTimeField().to_representation(instance.created_at),
            "updated_at": serializers.DateTimeField().to_representation(instance.updated_at),
            "member_count_url": self.get_member_count_url(instance),
        }
        return body

    def get_member_count_url(self, instance: SmartList) -> str:
        return f"/api/v1/smart-lists/{instance.pk}/members/"


class DefinitionSerializer(serializers.Serializer[Any]):
    """An unsaved definition, for the preview."""

    logic = serializers.JSONField(default=lambda: "all")  # type: ignore[arg-type,return-value]  # see above
    filters = serializers.JSONField()
