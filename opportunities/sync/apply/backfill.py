"""Back-fill: the values of fields that became visible, for rows OppSync already holds."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from people.models import Person

from ...models import ContactRole, Opportunity
from ...salesforce.records import FieldInfo, json_value, parse_value
from ...totals import people_of_opportunities, refresh_person_totals
from .common import (
    CONTACT_COLUMNS,
    LEAD_COLUMNS,
    OPPORTUNITY_COLUMNS,
    ROLE_COLUMNS,
    Counters,
    column_value,
)

logger = logging.getLogger(__name__)


@transaction.atomic
def values_backfill(
    sobject: str, records: list[dict[str, Any]], fields: dict[str, FieldInfo], counters: Counters
) -> int:
    """New fields' values for existing rows, without touching SystemModstamp or recording activities
    (the values did not change in Salesforce; they became visible). A record whose value does not
    fit its column is set aside (`counters.fail`): its retry by id re-reads every field, so it
    heals, and the rest of the back-fill goes on."""
    model, key, columns = {
        "Opportunity": (Opportunity, "sf_id", OPPORTUNITY_COLUMNS),
        "OpportunityContactRole": (ContactRole, "sf_id", ROLE_COLUMNS),
        "Contact": (Person, "sf_contact_id", CONTACT_COLUMNS),
        "Lead": (Person, "sf_lead_id", LEAD_COLUMNS),
    }[sobject]
    by_id: dict[str, dict[str, Any]] = {}
    for raw in records:
        try:
            by_id[raw["Id"]] = {
                name: parse_value(fields[name].type, value)
                for name, value in raw.items()
                if name in fields and name != "Id"
            }
        except (KeyError, ValueError) as error:
            counters.fail(str(raw.get("Id")), error)
    found = list(model.objects.filter(**{f"{key}__in": list(by_id)}))  # type: ignore[attr-defined]  # all three have objects
    rows = []
    changed_columns: set[str] = set()
    for row in found:
        if model is Person and sobject == "Lead" and row.contact_system_modstamp is not None:
            continue  # the contact's values win
        try:
            values = {
                columns[name]: column_value(model, columns[name], value)
                for name, value in by_id[getattr(row, key)].items()
                if name in columns
            }
        except ValueError as error:
            counters.fail(getattr(row, key), error)
            continue
        for column, value in values.items():
            setattr(row, column, value)
            changed_columns.add(column)
        custom = {n: json_value(v) for n, v in by_id[getattr(row, key)].items() if n not in columns}
        if custom:
            row.custom_fields = {**row.custom_fields, **custom}
        rows.append(row)
    model.objects.bulk_update(rows, [*changed_columns, "custom_fields"], batch_size=500)  # type: ignore[attr-defined]
    if model is Opportunity:  # a field that became visible may be Amount: totals follow
        # No row was deleted or undeleted: only the roles' people can see a difference.
        refresh_person_totals(people_of_opportunities((row.pk for row in rows), liveness_changed=False))
    return len(rows)
