"""The field catalog: FieldDefinition rows from describe, and the SELECT list they make."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from ..models import FieldDefinition, SyncState
from ..planner_statistics import custom_field_statistics_ensure
from ..salesforce.records import FieldInfo, ObjectDescription

# Always selected: what the windows, upserts and deletes run on.
REQUIRED_FIELDS = ("Id", "SystemModstamp", "IsDeleted")
# Parent fields read through a relationship when the reference is visible.
RELATIONSHIP_FIELDS = {"Opportunity": {"AccountId": "Account.Name"}, "Contact": {"AccountId": "Account.Name"}}


def field_definitions_sync(description: ObjectDescription, *, now: dt.datetime) -> list[str]:
    """Store what describe shows; deactivate what it no longer shows. Returns the API names that
    are new or active again (their values need a back-fill)."""
    existing = {d.api_name: d for d in FieldDefinition.objects.filter(sobject=description.name)}
    appeared: list[str] = []
    seen_unchanged: list[str] = []
    for name, info in description.fields.items():
        if not info.syncable:
            continue
        values = {
            "label": info.label[:255],
            "field_type": info.type,
            "soap_type": info.soap_type,
            "picklist_values": list(info.picklist_values),
            "reference_to": list(info.reference_to),
            "length": info.length,
            "precision": info.precision,
            "scale": info.scale,
            "is_custom": info.custom,
            "is_calculated": info.calculated,
            "is_nillable": info.nillable,
            "is_filterable": info.filterable,
            "is_active": True,
            "deactivated_at": None,
        }
        definition = existing.get(name)
        if definition is None:
            FieldDefinition.objects.create(
                sobject=description.name, api_name=name, first_seen_at=now, last_seen_at=now, **values
            )
            appeared.append(name)
            continue
        if not definition.is_active:
            appeared.append(name)
        if all(getattr(definition, attribute) == value for attribute, value in values.items()):
            seen_unchanged.append(name)  # the common case, once a minute: no row rewritten
            continue
        for attribute, value in values.items():
            setattr(definition, attribute, value)
        definition.last_seen_at = now
        definition.save()
    FieldDefinition.objects.filter(sobject=description.name, api_name__in=seen_unchanged).update(
        last_seen_at=now
    )
    gone = [name for name, d in existing.items() if d.is_active and name not in description.fields]
    FieldDefinition.objects.filter(sobject=description.name, api_name__in=gone).update(
        is_active=False, deactivated_at=now
    )
    if description.name == "Opportunity":
        custom_field_statistics_ensure(
            (name, description.fields[name].type) for name in appeared if description.fields[name].custom
        )
    return appeared


def active_fields(sobject: str) -> dict[str, FieldInfo]:
    """The fields to sync, by API name, from the stored catalog (no describe call needed)."""
    fields = {
        d.api_name: FieldInfo(
            name=d.api_name,
            label=d.label,
            type=d.field_type,
            soap_type=d.soap_type,
            length=d.length,
            precision=d.precision,
            scale=d.scale,
            custom=d.is_custom,
            calculated=d.is_calculated,
            nillable=d.is_nillable,
            filterable=d.is_filterable,
            picklist_values=tuple(d.picklist_values),
            reference_to=tuple(d.reference_to),
        )
        for d in FieldDefinition.objects.filter(sobject=sobject, is_active=True)
    }
    unreadable = unreadable_paths(sobject)
    for reference, path in RELATIONSHIP_FIELDS.get(sobject, {}).items():
        if reference in fields and path not in unreadable:
            fields[path] = FieldInfo(name=path, label="Account Name", type="string")
    return fields


def relationship_paths(sobject: str) -> list[str]:
    return list(RELATIONSHIP_FIELDS.get(sobject, {}).values())


def unreadable_paths(sobject: str) -> set[str]:
    """Relationship paths the org refused lately. Each is tried again once a reconcile interval
    (a day) has passed: two calls a day, not two a minute, while the user still cannot read it."""
    state = SyncState.objects.filter(sobject=sobject).only("unreadable_paths").first()
    if state is None or not state.unreadable_paths:
        return set()
    retry_before = timezone.now() - dt.timedelta(seconds=settings.SALESFORCE_RECONCILE_INTERVAL)
    return {
        path
        for path, found_at in state.unreadable_paths.items()
        if dt.datetime.fromisoformat(found_at) > retry_before
    }


def select_list(sobject: str, fields: dict[str, FieldInfo], only: list[str] | None = None) -> list[str]:
    """The SELECT list: every syncable field describe shows, Id/SystemModstamp/IsDeleted first."""
    names = list(only) if only is not None else sorted(n for n in fields if n not in REQUIRED_FIELDS)
    return [*(n for n in REQUIRED_FIELDS if only is None or n == "Id"), *names]
