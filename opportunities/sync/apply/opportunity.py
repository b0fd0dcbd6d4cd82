"""Opportunities: pages applied, field changes recorded as Opportunity is Updated per linked
person, deletions and undeletions as Removed/Added, waiting roles linked, formula fields refreshed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from ...models import Activity, ActivityType, ContactRole, Opportunity, TotalsCoverage
from ...salesforce.records import FieldInfo, json_value
from ...totals import locked_coverage, people_of_opportunities, refresh_person_totals
from .common import (
    NOT_TRACKED,
    OPPORTUNITY_COLUMNS,
    ApplyContext,
    activities_save,
    incoming_rows,
    new_activity,
    parse_all,
    role_activity,
    split_values,
)


def opportunities_apply(
    records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext
) -> None:
    parsed_by_id = parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return
    with transaction.atomic():
        # First, before any row is written: which picklist fields the totals rows hold, locked
        # until the page commits, so a rebuild never runs between our reading and our writing.
        coverage = locked_coverage()
        existing = {o.sf_id: o for o in Opportunity.objects.filter(sf_id__in=list(parsed_by_id))}
        to_create: list[Opportunity] = []
        changed: list[OpportunityChange] = []
        stamps = {sf_id: o.system_modstamp for sf_id, o in existing.items()}
        for sf_id, parsed, column_values, custom in incoming_rows(
            parsed_by_id, stamps.get, OPPORTUNITY_COLUMNS, Opportunity, ctx
        ):
            modstamp = parsed["SystemModstamp"]
            opportunity = existing.get(sf_id)
            is_deleted = bool(parsed.get("IsDeleted"))
            if opportunity is None:
                to_create.append(
                    Opportunity(
                        sf_id=sf_id,
                        system_modstamp=modstamp,
                        is_deleted=is_deleted,
                        custom_fields=custom,
                        **column_values,
                    )
                )
                ctx.counters.created += 1
                continue
            field_changes = _opportunity_changes(opportunity, column_values, custom, parsed)
            was_deleted = opportunity.is_deleted
            for column, value in column_values.items():
                setattr(opportunity, column, value)
            opportunity.custom_fields = {**opportunity.custom_fields, **custom}
            opportunity.system_modstamp = modstamp
            opportunity.is_deleted = is_deleted
            changed.append((opportunity, field_changes, was_deleted, is_deleted, modstamp))
            if is_deleted and not was_deleted:
                ctx.counters.deleted += 1
            else:
                ctx.counters.updated += 1
        Opportunity.objects.bulk_create(to_create, batch_size=1000)
        activities = _opportunity_changes_save(changed, ctx, coverage)
        activities += _link_roles_to_new_opportunities(to_create, ctx, coverage)
        activities_save(activities, coverage)


# What a person's opportunity totals are made of, besides the covered picklist fields' values: a
# change to anything else leaves them alone.
TOTALS_FIELDS = frozenset({"Amount", "ExpectedRevenue", "IsClosed", "IsWon"})
OpportunityChange = tuple[Opportunity, dict[str, tuple[Any, Any]], bool, bool, dt.datetime]


def _opportunity_changes_save(
    changed: list[OpportunityChange], ctx: ApplyContext, coverage: TotalsCoverage
) -> list[Activity]:
    """Write changed opportunities (values already set on them), refresh the totals of the people
    whose totals they move (`coverage`: the transaction's `locked_coverage()`), and return the
    activities the changes record."""
    if not changed:
        return []
    update_fields = [
        *set(OPPORTUNITY_COLUMNS.values()),
        "custom_fields",
        "system_modstamp",
        "is_deleted",
        "synced_at",
    ]
    Opportunity.objects.bulk_update([c[0] for c in changed], update_fields, batch_size=500)
    in_totals = TOTALS_FIELDS | set(coverage.picklist_fields)
    # Deleted or undeleted: its activities start or stop counting too. Otherwise only its roles'
    # people can see a difference.
    liveness = [o.pk for o, _, was_deleted, is_deleted, _ in changed if was_deleted != is_deleted]
    values = [
        o.pk
        for o, changes, was_deleted, is_deleted, _ in changed
        if was_deleted == is_deleted and in_totals & changes.keys()
    ]
    people = people_of_opportunities(liveness) | people_of_opportunities(values, liveness_changed=False)
    refresh_person_totals(people, coverage)
    return _opportunity_activities(changed, ctx)


def _opportunity_changes(
    opportunity: Opportunity, column_values: dict[str, Any], custom: dict[str, Any], parsed: dict[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """{API name: (previous, new)} as JSON values, for tracked fields that changed."""
    changes: dict[str, tuple[Any, Any]] = {}
    reverse = {column: api for api, column in OPPORTUNITY_COLUMNS.items()}
    for column, new in column_values.items():
        api_name = reverse[column]
        old = getattr(opportunity, column)
        if api_name not in NOT_TRACKED and api_name in parsed and old != new:
            changes[api_name] = (json_value(old), json_value(new))
    for api_name, new in custom.items():
        old = opportunity.custom_fields.get(api_name)
        if api_name not in NOT_TRACKED and api_name in opportunity.custom_fields and old != new:
            changes[api_name] = (old, new)
    return changes


def _opportunity_activities(changed: list[OpportunityChange], ctx: ApplyContext) -> list[Activity]:
    if not changed:
        return []
    opportunity_ids = [c[0].pk for c in changed]
    roles_by_opportunity: dict[int, list[ContactRole]] = {}
    # By Salesforce id: a person with two roles on the opportunity is always given the same one,
    # so a change re-read by another worker has the same unique key.
    for role in ContactRole.objects.filter(
        opportunity_id__in=opportunity_ids, is_deleted=False, person__isnull=False
    ).order_by("sf_id"):
        assert role.opportunity_id is not None
        roles_by_opportunity.setdefault(role.opportunity_id, []).append(role)
    activities: list[Activity] = []
    for opportunity, field_changes, was_deleted, is_deleted, modstamp in changed:
        roles = roles_by_opportunity.get(opportunity.pk, [])
        if was_deleted != is_deleted:
            # Deleting an opportunity removes its people from it; undeleting adds them back.
            kind = ActivityType.REMOVED_FROM_OPPORTUNITY if is_deleted else ActivityType.ADDED_TO_OPPORTUNITY
            activities += [role_activity(ctx, role, kind, modstamp) for role in roles]
            continue
        if is_deleted:
            continue
        seen_people: set[int] = set()
        for role in roles:
            assert role.person_id is not None
            if role.person_id in seen_people:  # one activity per person, even with two roles
                continue
            seen_people.add(role.person_id)
            for api_name, (previous, new) in field_changes.items():
                activities.append(
                    new_activity(
                        ctx,
                        person_id=role.person_id,
                        opportunity_id=opportunity.pk,
                        activity_type=ActivityType.OPPORTUNITY_UPDATED,
                        occurred_at=modstamp,
                        field=api_name,
                        previous_value=previous,
                        new_value=new,
                        sf_contact_role_id=role.sf_id,
                        role=role.role,
                        is_primary=role.is_primary,
                    )
                )
    return activities


def _link_roles_to_new_opportunities(
    created: list[Opportunity], ctx: ApplyContext, coverage: TotalsCoverage
) -> list[Activity]:
    """Roles that arrived before their opportunity link up now; live ones with a person are added."""
    if not created:
        return []
    waiting = list(
        ContactRole.objects.filter(sf_opportunity_id__in=[o.sf_id for o in created], opportunity__isnull=True)
    )
    if not waiting:
        return []
    # bulk_create does not set primary keys on every database: look the new rows up by Salesforce id.
    by_sf_id = {
        o.sf_id: o
        for o in Opportunity.objects.filter(sf_id__in={r.sf_opportunity_id for r in waiting}).only(
            "pk", "sf_id", "is_deleted", "system_modstamp"
        )
    }
    activities = []
    for role in waiting:
        opportunity = by_sf_id[role.sf_opportunity_id]
        role.opportunity_id = opportunity.pk
        if not role.is_deleted and not opportunity.is_deleted and role.person_id is not None:
            occurred_at = role.system_modstamp or opportunity.system_modstamp or dt.datetime.now(dt.UTC)
            activities.append(role_activity(ctx, role, ActivityType.ADDED_TO_OPPORTUNITY, occurred_at))
    ContactRole.objects.bulk_update(waiting, ["opportunity"], batch_size=500)
    refresh_person_totals((role.person_id for role in waiting), coverage)
    return activities


def opportunities_delete(deleted_at: dict[str, dt.datetime], ctx: ApplyContext) -> None:
    """Opportunities gone from Salesforce (purged, or no longer visible): their people are removed,
    each removal dated by when its opportunity went (`deleted_at` by Salesforce id)."""
    with transaction.atomic():
        coverage = locked_coverage()
        opportunities = list(Opportunity.objects.filter(sf_id__in=list(deleted_at), is_deleted=False))
        gone_at = {o.pk: deleted_at[o.sf_id] for o in opportunities}
        roles = ContactRole.objects.filter(
            opportunity__in=opportunities, is_deleted=False, person__isnull=False
        )
        activities = [
            role_activity(ctx, role, ActivityType.REMOVED_FROM_OPPORTUNITY, gone_at[role.opportunity_id])
            for role in roles
            if role.opportunity_id is not None
        ]
        Opportunity.objects.filter(pk__in=[o.pk for o in opportunities]).update(is_deleted=True)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
        refresh_person_totals(people_of_opportunities(o.pk for o in opportunities), coverage)
        ctx.counters.deleted += len(opportunities)


def opportunity_formulas_refresh(
    records: list[dict[str, Any]],
    fields: dict[str, FieldInfo],
    ctx: ApplyContext,
    *,
    detected_at: dt.datetime,
) -> int:
    """Fresh values of calculated fields (which change without a SystemModstamp bump): stored, and
    recorded as Opportunity is Updated for the linked people, dated when the change was seen.
    The stored SystemModstamp stays: the record itself did not change. Returns rows changed."""
    parsed_by_id = parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return 0
    with transaction.atomic():
        coverage = locked_coverage()
        existing = {
            o.sf_id: o for o in Opportunity.objects.filter(sf_id__in=list(parsed_by_id), is_deleted=False)
        }
        changed: list[OpportunityChange] = []
        for sf_id, parsed in parsed_by_id.items():
            opportunity = existing.get(sf_id)
            if opportunity is None:
                continue
            try:
                column_values, custom = split_values(parsed, OPPORTUNITY_COLUMNS, Opportunity)
            except ValueError as error:
                ctx.counters.fail(sf_id, error)
                continue
            field_changes = _opportunity_changes(opportunity, column_values, custom, parsed)
            if not field_changes:
                continue
            for column, value in column_values.items():
                setattr(opportunity, column, value)
            opportunity.custom_fields = {**opportunity.custom_fields, **custom}
            changed.append((opportunity, field_changes, False, False, detected_at))
        activities = _opportunity_changes_save(changed, ctx, coverage)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
        ctx.counters.updated += len(changed)
        return len(changed)
