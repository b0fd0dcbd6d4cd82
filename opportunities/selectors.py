"""Reads over synced data, shared by the API, the admin pages and (later) smart lists."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from people.models import Person

from .models import Activity, ContactRole, FieldDefinition, Opportunity, SyncCycle, SyncObjectRun, SyncState


def active_custom_field_names(sobject: str) -> frozenset[str]:
    """Custom fields describe shows now: the only ones the API lists under `custom_fields`."""
    return frozenset(
        FieldDefinition.objects.filter(sobject=sobject, is_active=True, is_custom=True).values_list(
            "api_name", flat=True
        )
    )


def opportunity_list() -> QuerySet[Opportunity]:
    live_roles = ContactRole.objects.filter(
        opportunity=OuterRef("pk"), is_deleted=False, person__isnull=False
    )
    return Opportunity.live.annotate(has_contact_roles=Exists(live_roles)).order_by("-close_date", "id")


def person_opportunity_roles(person: Person) -> QuerySet[ContactRole]:
    """The Opportunity Info tab: the person's live roles on live opportunities."""
    return (
        ContactRole.objects.filter(person=person, is_deleted=False, opportunity__is_deleted=False)
        .select_related("opportunity")
        .order_by("-opportunity__close_date", "opportunity_id", "id")
    )


def contact_role_list() -> QuerySet[ContactRole]:
    return ContactRole.objects.filter(is_deleted=False, opportunity__is_deleted=False).order_by("id")


def activity_list() -> QuerySet[Activity]:
    return Activity.objects.all().order_by("-occurred_at", "-id")


@dataclass
class ObjectSyncStatus:
    sobject: str
    state: SyncState | None
    last_run: SyncObjectRun | None


def sync_status() -> list[ObjectSyncStatus]:
    """Per object: where the sync stands and what its last cycle did."""
    states = {s.sobject: s for s in SyncState.objects.all()}
    return [
        ObjectSyncStatus(
            sobject=sobject,
            state=states.get(sobject),
            last_run=SyncObjectRun.objects.filter(sobject=sobject).order_by("-started_at", "-id").first(),
        )
        for sobject in ("Contact", "Lead", "Opportunity", "OpportunityContactRole")
    ]


def last_cycles(limit: int = 10) -> QuerySet[SyncCycle]:
    return SyncCycle.objects.order_by("-started_at", "-id")[:limit]
