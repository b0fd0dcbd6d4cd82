"""Opportunity, contact role and activity JSON (contract §3). Money is a decimal string next to
the subscription's default currency."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Activity, ContactRole, Opportunity


class OpportunitySerializer(serializers.ModelSerializer[Opportunity]):
    stage = serializers.CharField(source="stage_name")
    amount = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    expected_revenue = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    probability = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True)
    currency = serializers.SerializerMethodField()
    custom_fields = serializers.SerializerMethodField()

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "sf_id",
            "name",
            "account_name",
            "stage",
            "amount",
            "expected_revenue",
            "probability",
            "close_date",
            "type",
            "lead_source",
            "is_closed",
            "is_won",
            "currency",
            "custom_fields",
            "last_modified_in_salesforce",
        ]

    @extend_schema_field(
        {"type": "string", "example": "EUR", "description": "The subscription's default currency (ISO 4217)."}
    )
    def get_currency(self, opportunity: Opportunity) -> str:
        return str(self.context["currency"])

    @extend_schema_field({"type": "object", "additionalProperties": True, "example": {"Region__c": "EMEA"}})
    def get_custom_fields(self, opportunity: Opportunity) -> dict[str, Any]:
        """Custom fields by Salesforce API name; only those describe shows now."""
        active = self.context["custom_field_names"]["Opportunity"]
        return {name: value for name, value in opportunity.custom_fields.items() if name in active}


class ContactRoleSerializer(serializers.ModelSerializer[ContactRole]):
    class Meta:
        model = ContactRole
        fields = ["id", "sf_id", "opportunity", "person", "sf_contact_id", "role", "is_primary"]


class ActivitySerializer(serializers.ModelSerializer[Activity]):
    type = serializers.CharField(source="activity_type")
    previous_value = serializers.JSONField()
    new_value = serializers.JSONField()

    class Meta:
        model = Activity
        fields = [
            "id",
            "type",
            "person",
            "opportunity",
            "occurred_at",
            "role",
            "is_primary",
            "field",
            "previous_value",
            "new_value",
            "is_initial_load",
        ]


class PersonOpportunitySerializer(serializers.Serializer[Any]):
    """One row of the Opportunity Info tab: the person's role on an opportunity."""

    role = serializers.CharField()
    is_primary = serializers.BooleanField()
    opportunity = OpportunitySerializer()
