"""The four synced Salesforce objects, each described once: how its rows are stored, applied,
marked gone and listed. The engine loops over `SPECS` instead of writing the dispatch out four
times (contract: Contact, Lead, Opportunity, OpportunityContactRole, in this order)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models

from people.models import Person

from ..models import ContactRole, Opportunity
from ..salesforce.records import FieldInfo
from . import apply

Applier = Callable[[list[dict[str, Any]], dict[str, FieldInfo], apply.ApplyContext], None]
GoneMarker = Callable[[dict[str, dt.datetime], apply.ApplyContext], None]
# Fresh values of calculated fields: returns the rows that changed.
FormulaRefresher = Callable[
    [list[dict[str, Any]], dict[str, FieldInfo], apply.ApplyContext, dt.datetime], int
]


def _values_only(
    sobject: str,
) -> FormulaRefresher:
    """Formula values stored without activities (only opportunity changes record any)."""

    def refresh(
        records: list[dict[str, Any]],
        fields: dict[str, FieldInfo],
        ctx: apply.ApplyContext,
        detected_at: dt.datetime,
    ) -> int:
        return apply.values_backfill(sobject, records, fields, ctx.counters)

    return refresh


def _opportunity_formulas(
    records: list[dict[str, Any]],
    fields: dict[str, FieldInfo],
    ctx: apply.ApplyContext,
    detected_at: dt.datetime,
) -> int:
    return apply.opportunity_formulas_refresh(records, fields, ctx, detected_at=detected_at)


@dataclass(frozen=True)
class ObjectSpec:
    """One synced object: its table, the column holding its Salesforce id and its stamp, the
    applier of its pages and what "gone from Salesforce" does to its rows."""

    name: str
    model: type[models.Model]
    id_column: str
    stamp_column: str
    deleted_column: str
    applier: Applier
    mark_gone: GoneMarker
    # Rows that count as this object's (a converted lead waiting for its contact is no contact).
    local_filter: dict[str, Any]
    formulas_refresh: FormulaRefresher

    def local_ids(self) -> tuple[set[str], set[str]]:
        """(live ids, every id) OppSync holds for this object."""
        rows = (
            self.model._default_manager.filter(**self.local_filter)
            .exclude(**{self.id_column: None})
            .values_list(self.id_column, self.deleted_column)
        )
        known = {str(i) for i, _ in rows}
        live = {str(i) for i, deleted in rows if not deleted}
        return live, known

    def live_among(self, ids: list[str]) -> set[str]:
        """Which of `ids` OppSync holds as live rows of this object."""
        rows = self.model._default_manager.filter(
            **self.local_filter, **{f"{self.id_column}__in": ids, self.deleted_column: False}
        ).values_list(self.id_column, flat=True)
        return {str(i) for i in rows}

    def stored_stamps(self, ids: list[str]) -> dict[str, dt.datetime | None]:
        return dict(
            self.model._default_manager.filter(**{f"{self.id_column}__in": ids}).values_list(
                self.id_column, self.stamp_column
            )
        )


def _contacts_gone(deleted_at: dict[str, dt.datetime], ctx: apply.ApplyContext) -> None:
    apply.people_flag_deleted(contact_ids=list(deleted_at), ctx=ctx)


def _leads_gone(deleted_at: dict[str, dt.datetime], ctx: apply.ApplyContext) -> None:
    apply.people_flag_deleted(lead_ids=list(deleted_at), ctx=ctx)


SPECS: dict[str, ObjectSpec] = {
    "Contact": ObjectSpec(
        "Contact",
        Person,
        "sf_contact_id",
        "contact_system_modstamp",
        "is_deleted_in_salesforce",
        apply.contacts_apply,
        _contacts_gone,
        {"contact_system_modstamp__isnull": False},
        _values_only("Contact"),
    ),
    "Lead": ObjectSpec(
        "Lead",
        Person,
        "sf_lead_id",
        "lead_system_modstamp",
        "is_deleted_in_salesforce",
        apply.leads_apply,
        _leads_gone,
        {},
        _values_only("Lead"),
    ),
    "Opportunity": ObjectSpec(
        "Opportunity",
        Opportunity,
        "sf_id",
        "system_modstamp",
        "is_deleted",
        apply.opportunities_apply,
        apply.opportunities_delete,
        {},
        _opportunity_formulas,
    ),
    "OpportunityContactRole": ObjectSpec(
        "OpportunityContactRole",
        ContactRole,
        "sf_id",
        "system_modstamp",
        "is_deleted",
        apply.contact_roles_apply,
        apply.contact_roles_delete,
        {},
        _values_only("OpportunityContactRole"),
    ),
}
SYNCED_OBJECTS = tuple(SPECS)
