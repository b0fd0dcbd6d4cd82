"""What every applier shares: parsing a page, the idempotence rule, fitting values to columns
and building activities. See the package docstring for the rules the appliers follow."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from django.db import models

from people.models import Person

from ...models import Activity, ActivityType, ContactRole, Opportunity, SyncCycle, TotalsCoverage
from ...salesforce.records import FieldInfo, json_value, parse_value
from ...totals import ACTIVITY_TIMES, refresh_person_totals

logger = logging.getLogger(__name__)

NOT_STORED = frozenset({"Id", "IsDeleted", "SystemModstamp"})
# Audit fields change on every write; an activity for them would drown the real changes.
NOT_TRACKED = frozenset(
    {
        "Id",
        "IsDeleted",
        "SystemModstamp",
        "LastModifiedDate",
        "LastModifiedById",
        "CreatedDate",
        "CreatedById",
        "LastViewedDate",
        "LastReferencedDate",
        "LastActivityDate",
    }
)
OPPORTUNITY_COLUMNS = {**Opportunity.SALESFORCE_COLUMNS, "Account.Name": "account_name"}
CONTACT_COLUMNS = {
    "FirstName": "first_name",
    "LastName": "last_name",
    "Email": "email",
    "Title": "title",
    "LeadSource": "lead_source",
    "Phone": "phone",
    "Account.Name": "company",
}
LEAD_COLUMNS = {
    "FirstName": "first_name",
    "LastName": "last_name",
    "Email": "email",
    "Title": "title",
    "LeadSource": "lead_source",
    "Phone": "phone",
    "Company": "company",
}
ROLE_COLUMNS = {
    "Role": "role",
    "IsPrimary": "is_primary",
    "OpportunityId": "sf_opportunity_id",
    "ContactId": "sf_contact_id",
}


@dataclass
class Counters:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    # Records of the current page that could not be stored, by Salesforce id, with the reason in
    # words: the engine sets them aside (`sync.set_aside`) when the page commits.
    set_aside: dict[str, str] = field(default_factory=dict)

    def fail(self, record_id: str, error: Exception) -> None:
        """One record could not be stored: counted, and set aside with its reason (never dropped)."""
        self.failed += 1
        reason = failure_reason(error)
        if len(self.errors) < 5:
            self.errors.append(f"{record_id}: {reason}")
        self.set_aside[record_id] = reason
        logger.info("Salesforce record %s could not be stored: %s", record_id, reason)

    def snapshot(self) -> Counters:
        return replace(self, errors=list(self.errors), set_aside=dict(self.set_aside))

    def restore(self, saved: Counters) -> None:
        """Back to the counts of `saved`: a page rolled back counts nothing of what it did."""
        for name in ("created", "updated", "deleted", "skipped", "failed"):
            setattr(self, name, getattr(saved, name))
        self.errors, self.set_aside = list(saved.errors), dict(saved.set_aside)


def failure_reason(error: BaseException) -> str:
    """A value that does not fit says so in words; anything else names its type, as in a log."""
    if type(error) is ValueError:
        return str(error)
    return f"{type(error).__name__}: {error}".strip()


@dataclass
class ApplyContext:
    cycle: SyncCycle | None
    is_initial_load: bool
    counters: Counters
    # Reconciliation re-applies rows whose SystemModstamp did not move (sharing changes).
    force: bool = False

    def is_stale(self, stored: dt.datetime | None, incoming: dt.datetime) -> bool:
        """The idempotence rule: skip a row whose stored SystemModstamp is not older."""
        if stored is None:
            return False
        return stored > incoming if self.force else stored >= incoming


def parse_record(raw: dict[str, Any], fields: dict[str, FieldInfo]) -> dict[str, Any]:
    """Python values by API name; a value that does not fit its type raises ValueError."""
    parsed: dict[str, Any] = {}
    # An empty lookup comes as {"Account": null}, not {"Account.Name": null}: the path is empty.
    empty_heads = {name for name, value in raw.items() if value is None and name not in fields}
    for path in fields:
        if "." in path and path.split(".", 1)[0] in empty_heads:
            parsed[path] = None
    for name, value in raw.items():
        if name in empty_heads and any(p.startswith(f"{name}.") for p in fields):
            continue
        info = fields.get(name)
        parsed[name] = parse_value(
            info.type if info else ("datetime" if name == "SystemModstamp" else "string"), value
        )
    if not raw.get("Id"):
        raise ValueError("record without an Id")
    if not isinstance(parsed.get("SystemModstamp"), dt.datetime):
        raise ValueError("record without a SystemModstamp")
    return parsed


def column_value(model: type[models.Model], column: str, value: Any) -> Any:
    """Fit a value to its column: text is trimmed to the column's length and never null."""
    model_field = model._meta.get_field(column)
    if isinstance(model_field, models.CharField):
        text = "" if value is None else str(value)
        return text[: model_field.max_length] if model_field.max_length else text
    if isinstance(model_field, models.BooleanField) and not model_field.null:
        return bool(value)
    if isinstance(model_field, models.DecimalField) and value is not None:
        limit = Decimal(10) ** (model_field.max_digits - model_field.decimal_places)
        if abs(value) >= limit:
            raise ValueError(
                f"{value} does not fit {model.__name__}.{column} (at most "
                f"{model_field.max_digits - model_field.decimal_places} digits before the point)"
            )
        return value
    return value


def split_values(
    parsed: dict[str, Any], columns: dict[str, str], model: type[models.Model]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column values, custom_fields) of a parsed record."""
    column_values: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for name, value in parsed.items():
        if name in NOT_STORED:
            continue
        if name in columns:
            column_values[columns[name]] = column_value(model, columns[name], value)
        elif "." not in name:
            custom[name] = json_value(value)
    return column_values, custom


def new_activity(
    ctx: ApplyContext,
    *,
    person_id: int,
    opportunity_id: int | None,
    activity_type: str,
    occurred_at: dt.datetime,
    **extra: Any,
) -> Activity:
    return Activity(
        person_id=person_id,
        opportunity_id=opportunity_id,
        activity_type=activity_type,
        occurred_at=occurred_at,
        is_initial_load=ctx.is_initial_load,
        sync_cycle=ctx.cycle,
        **extra,
    )


def activities_save(activities: list[Activity], coverage: TotalsCoverage | None = None) -> None:
    """Insert activities (each once: the unique constraint) and refresh the totals rows of the
    people with an Added / Removed one among them: the smart lists read the latest times there.
    `coverage`: the page transaction's `locked_coverage()`, read once for all its refreshes."""
    Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
    kinds = set(ACTIVITY_TIMES.values())
    refresh_person_totals((a.person_id for a in activities if a.activity_type in kinds), coverage)


def role_activity(
    ctx: ApplyContext, role: ContactRole, activity_type: str, occurred_at: dt.datetime, **extra: Any
) -> Activity:
    """An activity of the role's person on the role's opportunity (`extra`: a field change's)."""
    assert role.person_id is not None
    return new_activity(
        ctx,
        person_id=role.person_id,
        opportunity_id=role.opportunity_id,
        activity_type=activity_type,
        occurred_at=occurred_at,
        sf_contact_role_id=role.sf_id,
        role=role.role,
        is_primary=role.is_primary,
        **extra,
    )


# The two ends a contact role may wait for: the column it waits in (its Salesforce id is there, its
# link is null), and the rows that end may be: a merged person is no longer one.
_WAITING_ENDS: dict[str, tuple[str, Callable[[list[str]], Iterable[tuple[str | None, int]]]]] = {
    "opportunity": (
        "sf_opportunity_id",
        lambda ids: Opportunity.objects.filter(sf_id__in=ids).values_list("sf_id", "pk"),
    ),
    "person": (
        "sf_contact_id",
        lambda ids: Person.objects.filter(sf_contact_id__in=ids, merged_into__isnull=True).values_list(
            "sf_contact_id", "pk"
        ),
    ),
}


def waiting_roles_link(
    end: Literal["opportunity", "person"],
    sf_ids: Iterable[str],
    ctx: ApplyContext,
    coverage: TotalsCoverage | None = None,
) -> list[Activity]:
    """Contact roles that arrived before their opportunity, or pointed at a contact OppSync did
    not know, link up when it appears (`sf_ids`: the Salesforce ids of the opportunities, or of
    the contacts, that did; a person appears as the contact itself or as a lead converted into
    it). A live role that is linked now (a person and a live opportunity) records Added to
    Opportunity, dated by its SystemModstamp (else its opportunity's). Returns those activities;
    the people's totals are refreshed (`coverage`: the page transaction's)."""
    sf_column, rows = _WAITING_ENDS[end]
    sf_ids = list(sf_ids)
    if not sf_ids:
        return []
    waiting = list(ContactRole.objects.filter(**{f"{sf_column}__in": sf_ids, f"{end}__isnull": True}))
    if not waiting:
        return []
    # bulk_create does not set primary keys on every database: look the new rows up by Salesforce id.
    found = dict(rows(sorted({getattr(role, sf_column) for role in waiting})))
    waiting = [role for role in waiting if getattr(role, sf_column) in found]
    for role in waiting:
        setattr(role, f"{end}_id", found[getattr(role, sf_column)])
    live = dict(
        Opportunity.objects.filter(
            pk__in={role.opportunity_id for role in waiting}, is_deleted=False
        ).values_list("pk", "system_modstamp")
    )
    activities = [
        role_activity(
            ctx,
            role,
            ActivityType.ADDED_TO_OPPORTUNITY,
            role.system_modstamp or live[role.opportunity_id] or dt.datetime.now(dt.UTC),
        )
        for role in waiting
        if role.person_id is not None and not role.is_deleted and role.opportunity_id in live
    ]
    ContactRole.objects.bulk_update(waiting, [end], batch_size=500)
    refresh_person_totals((role.person_id for role in waiting), coverage)
    return activities


def is_linked(role: ContactRole, live_opportunity_ids: set[int]) -> bool:
    return (
        (not role.is_deleted) and role.person_id is not None and role.opportunity_id in live_opportunity_ids
    )


def parse_all(
    records: list[dict[str, Any]], fields: dict[str, FieldInfo], counters: Counters
) -> dict[str, dict[str, Any]]:
    parsed_by_id: dict[str, dict[str, Any]] = {}
    for raw in records:
        try:
            parsed = parse_record(raw, fields)
        except ValueError as error:
            counters.fail(str(raw.get("Id")), error)
            continue
        previous = parsed_by_id.get(parsed["Id"])
        if previous is None or previous["SystemModstamp"] <= parsed["SystemModstamp"]:
            parsed_by_id[parsed["Id"]] = parsed
    return parsed_by_id
