"""Opportunities: pages applied, field changes recorded as Opportunity is Updated per linked
person, deletions and undeletions as Removed/Added, waiting roles linked, formula fields refreshed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
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
    role_activity,
    waiting_roles_link,
)
from .upsert import IncomingRow, PageUpsert, StampLookup, incoming_rows

# What a person's opportunity totals are made of, besides the covered picklist fields' values: a
# change to anything else leaves them alone.
TOTALS_FIELDS = frozenset({"Amount", "ExpectedRevenue", "IsClosed", "IsWon"})
OpportunityChange = tuple[Opportunity, dict[str, tuple[Any, Any]], bool, bool, dt.datetime]


def opportunities_apply(
    records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext
) -> None:
    _OpportunityPage(ctx).apply(records, fields)


class _OpportunityPage(PageUpsert[Opportunity]):
    """A page of opportunities: a changed one records its field changes (`_changes_recorded`), a
    new one links the roles that were waiting for it."""

    model = Opportunity
    columns = OPPORTUNITY_COLUMNS
    also_updated = ("synced_at",)

    def __init__(self, ctx: ApplyContext) -> None:
        super().__init__(ctx)
        self.existing: dict[str, Opportunity] = {}
        self.changed: list[OpportunityChange] = []

    def load(self, parsed_by_id: dict[str, dict[str, Any]]) -> StampLookup:
        self.existing = {o.sf_id: o for o in Opportunity.objects.filter(sf_id__in=list(parsed_by_id))}
        return {sf_id: o.system_modstamp for sf_id, o in self.existing.items()}.get

    def upsert(self, row: IncomingRow) -> None:
        opportunity = self.existing.get(row.sf_id)
        if opportunity is None:
            self.create(self.new(row))
            return
        field_changes = _opportunity_changes(opportunity, row.column_values, row.custom, row.parsed)
        was_deleted = opportunity.is_deleted
        self.write_over(opportunity, row, custom={**opportunity.custom_fields, **row.custom})
        self.changed.append((opportunity, field_changes, was_deleted, row.is_deleted, row.modstamp))
        self.update(opportunity, deleted=row.is_deleted and not was_deleted)

    def finish(self, parsed_by_id: dict[str, dict[str, Any]], coverage: TotalsCoverage) -> None:
        activities = _changes_recorded(self.changed, self.ctx, coverage)
        activities += waiting_roles_link("opportunity", (o.sf_id for o in self.to_create), self.ctx, coverage)
        activities_save(activities, coverage)


def _changes_recorded(
    changed: list[OpportunityChange], ctx: ApplyContext, coverage: TotalsCoverage
) -> list[Activity]:
    """For changed opportunities (already written): refresh the totals of the people whose totals
    they move (`coverage`: the transaction's `locked_coverage()`), and return the activities the
    changes record."""
    if not changed:
        return []
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
            activities += [
                role_activity(
                    ctx,
                    role,
                    ActivityType.OPPORTUNITY_UPDATED,
                    modstamp,
                    field=api_name,
                    previous_value=previous,
                    new_value=new,
                )
                for api_name, (previous, new) in field_changes.items()
            ]
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
    page = _FormulaValues(ctx, detected_at)
    page.apply(records, fields)
    return len(page.changed)


class _FormulaValues(_OpportunityPage):
    """A page of formula values: only live opportunities OppSync holds, none of them stale (their
    stamp did not move), and only a value that changed is written."""

    def __init__(self, ctx: ApplyContext, detected_at: dt.datetime) -> None:
        super().__init__(ctx)
        self.detected_at = detected_at

    def incoming(self, parsed_by_id: dict[str, dict[str, Any]]) -> Iterator[IncomingRow]:
        self.existing = {
            o.sf_id: o for o in Opportunity.objects.filter(sf_id__in=list(parsed_by_id), is_deleted=False)
        }
        held = {sf_id: parsed for sf_id, parsed in parsed_by_id.items() if sf_id in self.existing}
        return incoming_rows(held, None, self.columns, self.model, self.ctx)

    def upsert(self, row: IncomingRow) -> None:
        opportunity = self.existing[row.sf_id]
        field_changes = _opportunity_changes(opportunity, row.column_values, row.custom, row.parsed)
        if not field_changes:
            return
        for column, value in row.column_values.items():
            setattr(opportunity, column, value)
        opportunity.custom_fields = {**opportunity.custom_fields, **row.custom}
        self.changed.append((opportunity, field_changes, False, False, self.detected_at))
        self.update(opportunity, deleted=False)
