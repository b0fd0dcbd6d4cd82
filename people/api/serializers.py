"""Person JSON (contract §3)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Person


class PersonSerializer(serializers.ModelSerializer[Person]):
    custom_fields = serializers.SerializerMethodField()

    class Meta:
        model = Person
        fields = [
            "id",
            "sf_contact_id",
            "sf_lead_id",
            "email",
            "first_name",
            "last_name",
            "company",
            "title",
            "lead_source",
            "is_deleted_in_salesforce",
            "custom_fields",
        ]

    @extend_schema_field({"type": "object", "additionalProperties": True, "example": {"Persona__c": "Buyer"}})
    def get_custom_fields(self, person: Person) -> dict[str, Any]:
        """Custom fields of the person's Salesforce record that describe shows now."""
        sobject = "Contact" if person.contact_system_modstamp else "Lead"
        active = self.context["custom_field_names"][sobject]
        return {name: value for name, value in person.custom_fields.items() if name in active}
