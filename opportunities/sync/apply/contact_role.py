"""Opportunity contact roles: a role that becomes linked (live, with a known person and a live
opportunity) records Added to Opportunity; one that stops being linked records Removed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, transaction

from people.models import Person

from ...models import Activity, ActivityType, ContactRole, Opportunity
from ...salesforce.records import FieldInfo
from ...totals import locked_coverage, refresh_person_totals
from .common import ROLE_COLUMNS, ApplyContext, incoming_rows, is_linked, parse_all, role_activity


def contact_roles_apply(
    records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext
) -> None:
    parsed_by_id = parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return
    with transaction.atomic():
        # Before any row is written, as every page does (totals.locked_coverage).
        coverage = locked_coverage()
        existing = {r.sf_id: r for r in ContactRole.objects.filter(sf_id__in=list(parsed_by_id))}
        contact_ids = {p.get("ContactId") for p in parsed_by_id.values() if p.get("ContactId")}
        opportunity_sf_ids = {p.get("OpportunityId") for p in parsed_by_id.values() if p.get("OpportunityId")}
        opportunity_sf_ids |= {r.sf_opportunity_id for r in existing.values()}
        people = dict(Person.objects.filter(sf_contact_id__in=contact_ids).values_list("sf_contact_id", "id"))
        # Only ids and the deleted flag: loading whole opportunities (custom_fields) costs a lot.
        opportunity_rows = list(
            Opportunity.objects.filter(sf_id__in=opportunity_sf_ids).values_list("sf_id", "pk", "is_deleted")
        )
        opportunities = {sf_id: pk for sf_id, pk, _ in opportunity_rows}
        live_opportunity_ids = {pk for _, pk, deleted in opportunity_rows if not deleted}
        to_create: list[ContactRole] = []
        to_update: list[ContactRole] = []
        activities: list[Activity] = []
        added: list[str] = []  # new linked roles: their Added activities are written in one statement
        touched_people: set[int | None] = set()
        stamps = {sf_id: r.system_modstamp for sf_id, r in existing.items()}
        for sf_id, parsed, column_values, custom in incoming_rows(
            parsed_by_id, stamps.get, ROLE_COLUMNS, ContactRole, ctx
        ):
            modstamp = parsed["SystemModstamp"]
            role = existing.get(sf_id)
            contact_id = parsed.get("ContactId") or ""
            opportunity_sf_id = parsed.get("OpportunityId") or (role.sf_opportunity_id if role else "")
            opportunity_pk = opportunities.get(opportunity_sf_id)
            values = {
                **column_values,
                "custom_fields": custom,
                "sf_contact_id": contact_id,
                "sf_opportunity_id": opportunity_sf_id,
                "person_id": people.get(contact_id),
                "opportunity_id": opportunity_pk,
                "system_modstamp": modstamp,
                "is_deleted": bool(parsed.get("IsDeleted")),
            }
            if role is None:
                role = ContactRole(sf_id=sf_id, **values)
                to_create.append(role)
                touched_people.add(role.person_id)
                ctx.counters.created += 1
                if is_linked(role, live_opportunity_ids):
                    added.append(sf_id)
                continue
            before = ContactRole(
                person_id=role.person_id,
                opportunity_id=role.opportunity_id,
                is_deleted=role.is_deleted,
                role=role.role,
                is_primary=role.is_primary,
                sf_id=role.sf_id,
            )
            for name, value in values.items():
                setattr(role, name, value)
            to_update.append(role)
            touched_people.update((before.person_id, role.person_id))
            was_linked = is_linked(before, live_opportunity_ids)
            now_linked = is_linked(role, live_opportunity_ids)
            moved = (before.person_id, before.opportunity_id) != (role.person_id, role.opportunity_id)
            if was_linked and (not now_linked or moved):
                activities.append(role_activity(ctx, before, ActivityType.REMOVED_FROM_OPPORTUNITY, modstamp))
            if now_linked and (not was_linked or moved):
                activities.append(role_activity(ctx, role, ActivityType.ADDED_TO_OPPORTUNITY, modstamp))
            if role.is_deleted and not before.is_deleted:
                ctx.counters.deleted += 1
            else:
                ctx.counters.updated += 1
        ContactRole.objects.bulk_create(to_create, batch_size=1000)
        _added_activities_insert(added, ctx)
        ContactRole.objects.bulk_update(
            to_update,
            [
                "role",
                "is_primary",
                "custom_fields",
                "sf_contact_id",
                "sf_opportunity_id",
                "person",
                "opportunity",
                "system_modstamp",
                "is_deleted",
                "synced_at",
            ],
            batch_size=500,
        )
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
        refresh_person_totals(touched_people, coverage)


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
