"""People from contacts and leads: created and updated, merged, converted, flagged when gone, and
the contact roles that were waiting for them linked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q

from people.models import Person

from ...models import Activity, ActivityType, ContactRole, TotalsCoverage
from ...salesforce.records import FieldInfo
from ...totals import locked_coverage, refresh_person_totals
from .common import (
    CONTACT_COLUMNS,
    LEAD_COLUMNS,
    ApplyContext,
    activities_save,
    incoming_rows,
    parse_all,
    role_activity,
)


def contacts_apply(records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext) -> None:
    parsed_by_id = parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return
    with transaction.atomic():
        coverage = locked_coverage()  # once for the page's refreshes (totals.locked_coverage)
        existing = {p.sf_contact_id: p for p in Person.objects.filter(sf_contact_id__in=list(parsed_by_id))}
        to_create: list[Person] = []
        to_update: list[Person] = []
        merges: list[tuple[str, str]] = []
        stamps = {sf_id: p.contact_system_modstamp for sf_id, p in existing.items()}
        for sf_id, parsed, column_values, custom in incoming_rows(
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
        activities = _link_roles_to_new_people(list(parsed_by_id), ctx, coverage)
        activities_save(activities, coverage)
        for loser_id, master_id in merges:
            people_merge(loser_contact_id=loser_id, master_contact_id=master_id, coverage=coverage)


def _link_roles_to_new_people(
    contact_ids: list[str], ctx: ApplyContext, coverage: TotalsCoverage | None = None
) -> list[Activity]:
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
            activities.append(role_activity(ctx, role, ActivityType.ADDED_TO_OPPORTUNITY, occurred_at))
    ContactRole.objects.bulk_update(waiting, ["person"], batch_size=500)
    refresh_person_totals((role.person_id for role in waiting), coverage)
    return activities


def people_merge(
    *, loser_contact_id: str, master_contact_id: str, coverage: TotalsCoverage | None = None
) -> None:
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
    refresh_person_totals([loser.pk, master.pk], coverage)


def leads_apply(records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext) -> None:
    parsed_by_id = parse_all(records, fields, ctx.counters)
    if not parsed_by_id:
        return
    with transaction.atomic():
        coverage = locked_coverage()  # once for the page's refreshes (totals.locked_coverage)
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
        converted_people: list[int] = []
        merged_leads: list[tuple[str, Person]] = []  # (lead id, the person of its contact)
        stamps = {sf_id: p.lead_system_modstamp for sf_id, p in by_lead.items()}
        for sf_id, parsed, column_values, custom in incoming_rows(
            parsed_by_id, stamps.get, LEAD_COLUMNS, Person, ctx
        ):
            modstamp = parsed["SystemModstamp"]
            person = by_lead.get(sf_id)
            is_deleted = bool(parsed.get("IsDeleted"))
            contact_id = parsed.get("ConvertedContactId")
            contact_person = by_contact.get(contact_id) if contact_id else None
            if (
                contact_person is not None
                and contact_person is not person
                and contact_person.sf_lead_id not in (None, sf_id)
            ):
                # Another lead was converted into the same contact first: its person holds the
                # contact (and that lead's id). This lead's person is merged into it, keeping its
                # own lead id so that its re-reads find it; two people never claim one contact.
                if person is None:
                    person = Person()
                    to_create.append(person)
                    ctx.counters.created += 1
                else:
                    if person.pk is not None:
                        to_update[person.pk] = person
                    ctx.counters.updated += 1
                _lead_values_set(person, sf_id, modstamp, column_values, custom, is_deleted)
                by_lead[sf_id] = person
                merged_leads.append((sf_id, contact_person))
                continue
            if contact_person is not None and person is not None and contact_person.pk != person.pk:
                # Lead conversion: one person, the contact's; the lead's history moves along.
                Activity.objects.filter(person=person).update(person=contact_person)
                converted_people.append(contact_person.pk)
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
            _lead_values_set(person, sf_id, modstamp, column_values, custom, is_deleted)
            if contact_id and not person.sf_contact_id:
                person.sf_contact_id = contact_id  # the contact, when it arrives, updates this person
                # Another lead of this page converted into the same contact finds this person.
                by_contact[contact_id] = person
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
        converted_people += _merge_leads_into_contact_people(merged_leads)
        # A lead converted into a contact: roles waiting for that contact are the person's now.
        activities = _link_roles_to_new_people([c for c in converted_to if c], ctx, coverage)
        activities_save(activities, coverage)
        # A converted lead's activities moved to the contact's person: their latest times too.
        refresh_person_totals(converted_people, coverage)


def _lead_values_set(
    person: Person,
    sf_id: str,
    modstamp: dt.datetime,
    column_values: dict[str, Any],
    custom: dict[str, Any],
    is_deleted: bool,
) -> None:
    person.sf_lead_id = sf_id
    person.lead_system_modstamp = modstamp
    if person.contact_system_modstamp is None:
        # Until a contact exists, the lead's values are the person's; then the contact's win.
        for column, value in column_values.items():
            setattr(person, column, value)
        person.custom_fields = custom
        person.is_deleted_in_salesforce = is_deleted


def _merge_leads_into_contact_people(merged: list[tuple[str, Person]]) -> list[int]:
    """Leads converted into a contact whose person another lead holds: each lead's person points
    at that person (a merge loser, out of every smart list) and its history moves there. Returns
    the people whose activities changed."""
    if not merged:
        return []
    # bulk_create does not set primary keys on every database: look the people up by lead id.
    lead_ids = {lead for lead, _ in merged} | {m.sf_lead_id for _, m in merged if m.sf_lead_id}
    ids = dict(Person.objects.filter(sf_lead_id__in=lead_ids).values_list("sf_lead_id", "id"))
    touched: list[int] = []
    for lead_id, master in merged:
        loser_pk = ids.get(lead_id)
        master_pk = master.pk or ids.get(master.sf_lead_id or "")
        if loser_pk is None or master_pk is None or loser_pk == master_pk:
            continue
        Activity.objects.filter(person_id=loser_pk).update(person_id=master_pk)
        Person.objects.filter(pk=loser_pk).update(merged_into_id=master_pk)
        touched += [loser_pk, master_pk]
    return touched


def people_flag_deleted(
    *, contact_ids: Iterable[str] = (), lead_ids: Iterable[str] = (), ctx: ApplyContext
) -> None:
    """Contacts or leads gone from Salesforce: flagged, never erased (their history stays)."""
    flagged = Person.objects.filter(
        Q(sf_contact_id__in=list(contact_ids)) | Q(sf_lead_id__in=list(lead_ids), sf_contact_id__isnull=True),
        is_deleted_in_salesforce=False,
    ).update(is_deleted_in_salesforce=True)
    ctx.counters.deleted += flagged
