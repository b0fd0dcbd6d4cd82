"""Opportunity contact roles: a role that becomes linked (live, with a known person and a live
opportunity) records Added to Opportunity; one that stops being linked records Removed."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from django.db import connection, transaction

from people.models import Person

from ...models import Activity, ActivityType, ContactRole, Opportunity, TotalsCoverage
from ...salesforce.records import FieldInfo
from ...totals import refresh_person_totals
from .common import ROLE_COLUMNS, ApplyContext, is_linked, role_activity
from .upsert import IncomingRow, PageUpsert, StampLookup


def contact_roles_apply(
    records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext
) -> None:
    _RolePage(ctx).apply(records, fields)


class _RolePage(PageUpsert[ContactRole]):
    """A page of contact roles: a role that becomes linked records Added, one that stops being
    linked (or moves to another person or opportunity) Removed."""

    model = ContactRole
    columns = ROLE_COLUMNS
    also_updated = ("person", "opportunity", "synced_at")

    def __init__(self, ctx: ApplyContext) -> None:
        super().__init__(ctx)
        self.existing: dict[str, ContactRole] = {}
        self.people: dict[str | None, int] = {}
        self.opportunities: dict[str, int] = {}
        self.live_opportunity_ids: set[int] = set()
        self.activities: list[Activity] = []
        self.added: list[str] = []  # new linked roles: their Added activities are written in one statement
        self.touched_people: set[int | None] = set()

    def load(self, parsed_by_id: dict[str, dict[str, Any]]) -> StampLookup:
        self.existing = {r.sf_id: r for r in ContactRole.objects.filter(sf_id__in=list(parsed_by_id))}
        contact_ids = {p.get("ContactId") for p in parsed_by_id.values() if p.get("ContactId")}
        opportunity_sf_ids = {p.get("OpportunityId") for p in parsed_by_id.values() if p.get("OpportunityId")}
        opportunity_sf_ids |= {r.sf_opportunity_id for r in self.existing.values()}
        self.people = dict(
            Person.objects.filter(sf_contact_id__in=contact_ids).values_list("sf_contact_id", "id")
        )
        # Only ids and the deleted flag: loading whole opportunities (custom_fields) costs a lot.
        opportunity_rows = list(
            Opportunity.objects.filter(sf_id__in=opportunity_sf_ids).values_list("sf_id", "pk", "is_deleted")
        )
        self.opportunities = {sf_id: pk for sf_id, pk, _ in opportunity_rows}
        self.live_opportunity_ids = {pk for _, pk, deleted in opportunity_rows if not deleted}
        return {sf_id: r.system_modstamp for sf_id, r in self.existing.items()}.get

    def upsert(self, row: IncomingRow) -> None:
        role = self.existing.get(row.sf_id)
        contact_id = row.parsed.get("ContactId") or ""
        opportunity_sf_id = row.parsed.get("OpportunityId") or (role.sf_opportunity_id if role else "")
        links = {
            "sf_contact_id": contact_id,
            "sf_opportunity_id": opportunity_sf_id,
            "person_id": self.people.get(contact_id),
            "opportunity_id": self.opportunities.get(opportunity_sf_id),
        }
        live = self.live_opportunity_ids
        if role is None:
            role = self.new(row, **links)
            self.create(role)
            self.touched_people.add(role.person_id)
            if is_linked(role, live):
                self.added.append(row.sf_id)
            return
        before = copy.copy(role)  # as stored: what it was linked to, for Removed
        self.write_over(role, row, custom=row.custom, **links)
        self.touched_people.update((before.person_id, role.person_id))
        was_linked, now_linked = is_linked(before, live), is_linked(role, live)
        moved = (before.person_id, before.opportunity_id) != (role.person_id, role.opportunity_id)
        if was_linked and (not now_linked or moved):
            self.activities.append(
                role_activity(self.ctx, before, ActivityType.REMOVED_FROM_OPPORTUNITY, row.modstamp)
            )
        if now_linked and (not was_linked or moved):
            self.activities.append(
                role_activity(self.ctx, role, ActivityType.ADDED_TO_OPPORTUNITY, row.modstamp)
            )
        self.update(role, deleted=role.is_deleted and not before.is_deleted)

    def finish(self, parsed_by_id: dict[str, dict[str, Any]], coverage: TotalsCoverage) -> None:
        _added_activities_insert(self.added, self.ctx)
        Activity.objects.bulk_create(self.activities, batch_size=1000, ignore_conflicts=True)
        refresh_person_totals(self.touched_people, coverage)


def _added_activities_insert(role_sf_ids: list[str], ctx: ApplyContext) -> None:
    """Added to Opportunity for newly created, linked roles, as one INSERT ... SELECT from the
    roles just written: a first load records hundreds of thousands of these, and building them
    as model instances would cost more than writing the roles themselves."""
    if not role_sf_ids:
        return
    activity, role = Activity._meta.db_table, ContactRole._meta.db_table
    marks = ", ".join(["%s"] * len(role_sf_ids))
    sql = (
        f"INSERT INTO {activity} (person_id, opportunity_id, activity_type, occurred_at, recorded_at, "
        "sf_contact_role_id, role, is_primary, field, previous_value, new_value, is_initial_load, sync_cycle_id) "
        f"SELECT person_id, opportunity_id, %s, system_modstamp, %s, sf_id, role, is_primary, '', NULL, NULL, %s, %s "
        f"FROM {role} WHERE sf_id IN ({marks}) ORDER BY id "
        # Recorded once, even if another worker recorded it first (the unique constraint).
        "ON CONFLICT DO NOTHING"
    )
    params = [
        ActivityType.ADDED_TO_OPPORTUNITY.value,
        dt.datetime.now(dt.UTC),
        ctx.is_initial_load,
        ctx.cycle.pk if ctx.cycle else None,
        *role_sf_ids,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def contact_roles_delete(deleted_at: dict[str, dt.datetime], ctx: ApplyContext) -> None:
    """Hard deletes found by getDeleted or reconciliation: the role is gone from Salesforce.
    `deleted_at` maps each role's id to when it went."""
    with transaction.atomic():
        roles = list(
            ContactRole.objects.filter(sf_id__in=list(deleted_at), is_deleted=False).select_related(
                "opportunity"
            )
        )
        activities = [
            role_activity(ctx, role, ActivityType.REMOVED_FROM_OPPORTUNITY, deleted_at[role.sf_id])
            for role in roles
            if role.person_id is not None and role.opportunity is not None and not role.opportunity.is_deleted
        ]
        ContactRole.objects.filter(pk__in=[r.pk for r in roles]).update(is_deleted=True)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
        refresh_person_totals(r.person_id for r in roles)
        ctx.counters.deleted += len(roles)
