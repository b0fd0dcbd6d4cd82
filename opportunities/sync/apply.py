"""Apply pages of Salesforce records to OppSync's tables, and record what changed as activities.

Every function here is idempotent: a row whose stored SystemModstamp is not older than the
incoming one is skipped, so re-reading a window (the lookback, a retry after a crash) changes
nothing and records no activity twice. Activities come from comparing what was stored with what
arrived (product.md §2):

- a contact role that becomes *linked* (live, with a known person and a live opportunity) records
  Added to Opportunity; one that stops being linked records Removed from Opportunity;
- a changed opportunity field records one Opportunity is Updated per field and per linked person.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q

from people.models import Person

from ..models import Activity, ActivityType, ContactRole, Opportunity, SyncCycle
from ..salesforce.records import FieldInfo, json_value, parse_value
from ..totals import people_of_opportunities, refresh_person_totals

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

    def fail(self, record_id: str, error: Exception) -> None:
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(f"{record_id}: {error}")
        logger.warning("Skipped Salesforce record %s: %s", record_id, error)


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


def _column_value(model: type[models.Model], column: str, value: Any) -> Any:
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
            raise ValueError(f"{value} does not fit {column}")
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
            column_values[columns[name]] = _column_value(model, columns[name], value)
        elif "." not in name:
            custom[name] = json_value(value)
    return column_values, custom


def _incoming(
    parsed_by_id: dict[str, dict[str, Any]],
    stored_stamp: Callable[[str], dt.datetime | None],
    columns: dict[str, str],
    model: type[models.Model],
    ctx: ApplyContext,
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """The rows to apply: (id, parsed, column values, custom fields). Rows whose stored
    SystemModstamp is not older are skipped (idempotence); rows whose values do not fit are
    counted as failed and skipped, without stopping the page."""
    for sf_id, parsed in parsed_by_id.items():
        if ctx.is_stale(stored_stamp(sf_id), parsed["SystemModstamp"]):
            ctx.counters.skipped += 1
            continue
        try:
            column_values, custom = split_values(parsed, columns, model)
        except ValueError as error:
            ctx.counters.fail(sf_id, error)
            continue
        yield sf_id, parsed, column_values, custom


def _activity(
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


def _role_activity(
    ctx: ApplyContext, role: ContactRole, activity_type: str, occurred_at: dt.datetime
) -> Activity:
    assert role.person_id is not None
    return _activity(
        ctx,
        person_id=role.person_id,
        opportunity_id=role.opportunity_id,
        activity_type=activity_type,
        occurred_at=occurred_at,
        sf_contact_role_id=role.sf_id,
        role=role.role,
        is_primary=role.is_primary,
    )


def _linked(role: ContactRole, live_opportunity_ids: set[int]) -> bool:
    return (
        (not role.is_deleted) and role.person_id is not None and role.opportunity_id in live_opportunity_ids
    )


# --- Opportunities ------------------------------------------------------------------------------------
def opportunities_apply(
    records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext
) -> None:
    parsed_by_id = _parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return
    with transaction.atomic():
        existing = {o.sf_id: o for o in Opportunity.objects.filter(sf_id__in=list(parsed_by_id))}
        to_create: list[Opportunity] = []
        changed: list[OpportunityChange] = []
        stamps = {sf_id: o.system_modstamp for sf_id, o in existing.items()}
        for sf_id, parsed, column_values, custom in _incoming(
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
        activities = _opportunity_changes_save(changed, ctx)
        activities += _link_roles_to_new_opportunities(to_create, ctx)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)


# What a person's opportunity totals are made of: a change to anything else leaves them alone.
TOTALS_FIELDS = frozenset({"Amount", "ExpectedRevenue", "IsClosed", "IsWon"})
OpportunityChange = tuple[Opportunity, dict[str, tuple[Any, Any]], bool, bool, dt.datetime]


def _opportunity_changes_save(changed: list[OpportunityChange], ctx: ApplyContext) -> list[Activity]:
    """Write changed opportunities (values already set on them), refresh the totals of the people
    whose totals they move, and return the activities the changes record."""
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
    moving_totals = [
        o.pk
        for o, changes, was_deleted, is_deleted, _ in changed
        if was_deleted != is_deleted or TOTALS_FIELDS & changes.keys()
    ]
    refresh_person_totals(people_of_opportunities(moving_totals))
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
            activities += [_role_activity(ctx, role, kind, modstamp) for role in roles]
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
                    _activity(
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


def _link_roles_to_new_opportunities(created: list[Opportunity], ctx: ApplyContext) -> list[Activity]:
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
            activities.append(_role_activity(ctx, role, ActivityType.ADDED_TO_OPPORTUNITY, occurred_at))
    ContactRole.objects.bulk_update(waiting, ["opportunity"], batch_size=500)
    refresh_person_totals(role.person_id for role in waiting)
    return activities


# --- Contact roles ------------------------------------------------------------------------------------
def contact_roles_apply(
    records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext
) -> None:
    parsed_by_id = _parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return
    with transaction.atomic():
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
        for sf_id, parsed, column_values, custom in _incoming(
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
                if _linked(role, live_opportunity_ids):
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
            was_linked, is_linked = _linked(before, live_opportunity_ids), _linked(role, live_opportunity_ids)
            moved = (before.person_id, before.opportunity_id) != (role.person_id, role.opportunity_id)
            if was_linked and (not is_linked or moved):
                activities.append(
                    _role_activity(ctx, before, ActivityType.REMOVED_FROM_OPPORTUNITY, modstamp)
                )
            if is_linked and (not was_linked or moved):
                activities.append(_role_activity(ctx, role, ActivityType.ADDED_TO_OPPORTUNITY, modstamp))
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
        refresh_person_totals(touched_people)


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
            _role_activity(ctx, role, ActivityType.REMOVED_FROM_OPPORTUNITY, deleted_at[role.sf_id])
            for role in roles
            if role.person_id is not None and role.opportunity is not None and not role.opportunity.is_deleted
        ]
        ContactRole.objects.filter(pk__in=[r.pk for r in roles]).update(is_deleted=True)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
        refresh_person_totals(r.person_id for r in roles)
        ctx.counters.deleted += len(roles)


def opportunities_delete(deleted_at: dict[str, dt.datetime], ctx: ApplyContext) -> None:
    """Opportunities gone from Salesforce (purged, or no longer visible): their people are removed,
    each removal dated by when its opportunity went (`deleted_at` by Salesforce id)."""
    with transaction.atomic():
        opportunities = list(Opportunity.objects.filter(sf_id__in=list(deleted_at), is_deleted=False))
        gone_at = {o.pk: deleted_at[o.sf_id] for o in opportunities}
        roles = ContactRole.objects.filter(
            opportunity__in=opportunities, is_deleted=False, person__isnull=False
        )
        activities = [
            _role_activity(ctx, role, ActivityType.REMOVED_FROM_OPPORTUNITY, gone_at[role.opportunity_id])
            for role in roles
            if role.opportunity_id is not None
        ]
        Opportunity.objects.filter(pk__in=[o.pk for o in opportunities]).update(is_deleted=True)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
        refresh_person_totals(people_of_opportunities(o.pk for o in opportunities))
        ctx.counters.deleted += len(opportunities)


# --- People -------------------------------------------------------------------------------------------
def contacts_apply(records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext) -> None:
    parsed_by_id = _parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return
    with transaction.atomic():
        existing = {p.sf_contact_id: p for p in Person.objects.filter(sf_contact_id__in=list(parsed_by_id))}
        to_create: list[Person] = []
        to_update: list[Person] = []
        merges: list[tuple[str, str]] = []
        stamps = {sf_id: p.contact_system_modstamp for sf_id, p in existing.items()}
        for sf_id, parsed, column_values, custom in _incoming(
            parsed_by_id, stamps.get, CONTACT_COLUMNS, Person, ctx
        ):
            modstamp = parsed["SystemModstamp"]
            person = existing.get(sf_id)
            is_deleted = bool(parsed.get("IsDeleted"))
            if parsed.get("MasterRecordId") and is_deleted:
                merges.append((sf_id, parsed["MasterRecordId"]))
            if person is None:
                to_create.append(
                    Person(
                        sf_contact_id=sf_id,
                        contact_system_modstamp=modstamp,
                        is_deleted_in_salesforce=is_deleted,
                        custom_fields=custom,
                        **column_values,
                    )
                )
                ctx.counters.created += 1
                continue
            if is_deleted and not person.is_deleted_in_salesforce:
                ctx.counters.deleted += 1
            else:
                ctx.counters.updated += 1
            for column, value in column_values.items():
                setattr(person, column, value)
            person.custom_fields = custom
            person.contact_system_modstamp = modstamp
            person.is_deleted_in_salesforce = is_deleted
            to_update.append(person)
        Person.objects.bulk_create(to_create, batch_size=1000)
        Person.objects.bulk_update(
            to_update,
            [
                *set(CONTACT_COLUMNS.values()),
                "custom_fields",
                "contact_system_modstamp",
                "is_deleted_in_salesforce",
                "updated_at",
            ],
            batch_size=500,
        )
        # Every contact of the page, not only new people: a person may have been waiting under
        # this contact id already (a lead converted into a contact OppSync could not see).
        activities = _link_roles_to_new_people(list(parsed_by_id), ctx)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
        for loser_id, master_id in merges:
            people_merge(loser_contact_id=loser_id, master_contact_id=master_id)


def _link_roles_to_new_people(contact_ids: list[str], ctx: ApplyContext) -> list[Activity]:
    """Roles that pointed at a contact OppSync did not know link up when a person with that
    contact id appears (the contact itself, or a lead converted into it)."""
    if not contact_ids:
        return []
    people = dict(
        Person.objects.filter(sf_contact_id__in=contact_ids, merged_into__isnull=True).values_list(
            "sf_contact_id", "id"
        )
    )
    waiting = list(
        ContactRole.objects.filter(sf_contact_id__in=list(people), person__isnull=True).select_related(
            "opportunity"
        )
    )
    activities = []
    for role in waiting:
        role.person_id = people.get(role.sf_contact_id)
        if (
            role.person_id
            and not role.is_deleted
            and role.opportunity is not None
            and not role.opportunity.is_deleted
        ):
            occurred_at = role.system_modstamp or role.opportunity.system_modstamp or dt.datetime.now(dt.UTC)
            activities.append(_role_activity(ctx, role, ActivityType.ADDED_TO_OPPORTUNITY, occurred_at))
    ContactRole.objects.bulk_update(waiting, ["person"], batch_size=500)
    refresh_person_totals(role.person_id for role in waiting)
    return activities


def people_merge(*, loser_contact_id: str, master_contact_id: str) -> None:
    """A contact merged into another: its history moves to the master person, it points there."""
    loser = Person.objects.filter(sf_contact_id=loser_contact_id).first()
    master = Person.objects.filter(sf_contact_id=master_contact_id).first()
    if loser is None or master is None or loser.pk == master.pk:
        return
    Activity.objects.filter(person=loser).update(person=master)
    # Salesforce re-parents the loser's roles to the master: the same link under the surviving
    # person, not a removal and an addition. When the roles' own update arrives it changes nothing.
    ContactRole.objects.filter(person=loser).update(person=master, sf_contact_id=master_contact_id)
    Person.objects.filter(pk=loser.pk).update(merged_into=master, is_deleted_in_salesforce=True)
    refresh_person_totals([loser.pk, master.pk])


def leads_apply(records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext) -> None:
    parsed_by_id = _parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return
    with transaction.atomic():
        converted_to = {
            p.get("ConvertedContactId") for p in parsed_by_id.values() if p.get("ConvertedContactId")
        }
        people = Person.objects.filter(
            Q(sf_lead_id__in=list(parsed_by_id)) | Q(sf_contact_id__in=converted_to)
        )
        by_lead = {p.sf_lead_id: p for p in people if p.sf_lead_id}
        by_contact = {p.sf_contact_id: p for p in people if p.sf_contact_id}
        to_create: list[Person] = []
        to_update: dict[int, Person] = {}
        stamps = {sf_id: p.lead_system_modstamp for sf_id, p in by_lead.items()}
        for sf_id, parsed, column_values, custom in _incoming(
            parsed_by_id, stamps.get, LEAD_COLUMNS, Person, ctx
        ):
            modstamp = parsed["SystemModstamp"]
            person = by_lead.get(sf_id)
            is_deleted = bool(parsed.get("IsDeleted"))
            contact_id = parsed.get("ConvertedContactId")
            contact_person = by_contact.get(contact_id) if contact_id else None
            if contact_person is not None and person is not None and contact_person.pk != person.pk:
                # Lead conversion: one person, the contact's; the lead's history moves along.
                Activity.objects.filter(person=person).update(person=contact_person)
                to_update.pop(person.pk, None)
                person.delete()
                person = None
            if person is None and contact_person is not None:
                person = contact_person
            created = person is None
            if person is None:
                person = Person()
                to_create.append(person)
            elif person.pk is not None:
                to_update[person.pk] = person
            person.sf_lead_id = sf_id
            person.lead_system_modstamp = modstamp
            if contact_id and not person.sf_contact_id:
                person.sf_contact_id = contact_id  # the contact, when it arrives, updates this person
            if person.contact_system_modstamp is None:
                # Until a contact exists, the lead's values are the person's; then the contact's win.
                for column, value in column_values.items():
                    setattr(person, column, value)
                person.custom_fields = custom
                person.is_deleted_in_salesforce = is_deleted
            by_lead[sf_id] = person
            if created:
                ctx.counters.created += 1
            elif is_deleted:
                ctx.counters.deleted += 1
            else:
                ctx.counters.updated += 1
        Person.objects.bulk_create(to_create, batch_size=1000)
        Person.objects.bulk_update(
            list(to_update.values()),
            [
                *set(LEAD_COLUMNS.values()),
                "sf_lead_id",
                "sf_contact_id",
                "custom_fields",
                "lead_system_modstamp",
                "is_deleted_in_salesforce",
                "updated_at",
            ],
            batch_size=500,
        )
        # A lead converted into a contact: roles waiting for that contact are the person's now.
        activities = _link_roles_to_new_people([c for c in converted_to if c], ctx)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)


def people_flag_deleted(
    *, contact_ids: Iterable[str] = (), lead_ids: Iterable[str] = (), ctx: ApplyContext
) -> None:
    """Contacts or leads gone from Salesforce: flagged, never erased (their history stays)."""
    flagged = Person.objects.filter(
        Q(sf_contact_id__in=list(contact_ids)) | Q(sf_lead_id__in=list(lead_ids), sf_contact_id__isnull=True),
        is_deleted_in_salesforce=False,
    ).update(is_deleted_in_salesforce=True)
    ctx.counters.deleted += flagged


# --- Formula fields ------------------------------------------------------------------------------------
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
    parsed_by_id = _parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return 0
    with transaction.atomic():
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
        activities = _opportunity_changes_save(changed, ctx)
        Activity.objects.bulk_create(activities, batch_size=1000, ignore_conflicts=True)
        ctx.counters.updated += len(changed)
        return len(changed)


# --- Back-fill of fields that appeared ------------------------------------------------------------------
@transaction.atomic
def values_backfill(sobject: str, records: list[dict[str, Any]], fields: dict[str, FieldInfo]) -> int:
    """New fields' values for existing rows, without touching SystemModstamp or recording activities
    (the values did not change in Salesforce; they became visible)."""
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
            logger.warning("Back-fill skipped %s: %s", raw.get("Id"), error)
    rows = list(model.objects.filter(**{f"{key}__in": list(by_id)}))  # type: ignore[attr-defined]  # all three have objects
    changed_columns: set[str] = set()
    for row in rows:
        if model is Person and sobject == "Lead" and row.contact_system_modstamp is not None:
            continue  # the contact's values win
        for name, value in by_id[getattr(row, key)].items():
            if name in columns:
                setattr(row, columns[name], _column_value(model, columns[name], value))
                changed_columns.add(columns[name])
            else:
                row.custom_fields = {**row.custom_fields, name: json_value(value)}
    model.objects.bulk_update(rows, [*changed_columns, "custom_fields"], batch_size=500)  # type: ignore[attr-defined]
    if model is Opportunity:  # a field that became visible may be Amount: totals follow
        refresh_person_totals(people_of_opportunities(row.pk for row in rows))
    return len(rows)


def _parse_all(
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
