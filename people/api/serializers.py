"""Person JSON (contract §3)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..columns import API_PERSON_FIELDS
from ..models import Person


class PersonSerializer(serializers.ModelSerializer[Person]):
    custom_fields = serializers.SerializerMethodField()

    class Meta:
        model = Person
        # The person columns the API shows (people/columns.py, which the member export reads too).
        fields = API_PERSON_FIELDS

    @extend_schema_field({"type": "object", "additionalProperties": True, "example": {"Persona__c": "Buyer"}})
    def get_custom_fields(self, person: Person) -> dict[str, Any]:
        """Custom fields of the person's Salesforce record that describe shows now."""
        sobject = "Contact" if person.contact_system_modstamp else "Lead"
        active = self.context["custom_field_names"][sobject]
        return {name: value for name, value in person.custom_fields.items() if name in active}
