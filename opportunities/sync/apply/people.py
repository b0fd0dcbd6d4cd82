"""People from contacts and leads: created and updated, merged, converted, flagged when gone, and
the contact roles that were waiting for them linked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from people.models import Person

from ...models import Activity, ContactRole, TotalsCoverage
from ...salesforce.records import FieldInfo
from ...totals import refresh_person_totals
from .common import CONTACT_COLUMNS, LEAD_COLUMNS, ApplyContext, activities_save, waiting_roles_link
from .upsert import IncomingRow, PageUpsert, StampLookup


def contacts_apply(records: list[dict[str, Any]], fields: dict[str, FieldInfo], ctx: ApplyContext) -> None:
    _ContactPage(ctx).apply(records, fields)


class _ContactPage(PageUpsert[Person]):
    """A page of contacts: a contact deleted as a merge's loser merges into its master, and the
    roles that were waiting for a contact link up."""

    model = Person
    columns = CONTACT_COLUMNS
    also_updated = ("updated_at",)
    id_field = "sf_contact_id"
    stamp_field = "contact_system_modstamp"
    deleted_field = "is_deleted_in_salesforce"

    def __init__(self, ctx: ApplyContext) -> None:
        super().__init__(ctx)
        self.existing: dict[str | None, Person] = {}
        self.merges: list[tuple[str, str]] = []

    def load(self, parsed_by_id: dict[str, dict[str, Any]]) -> StampLookup:
        self.existing = {
            p.sf_contact_id: p for p in Person.objects.filter(sf_contact_id__in=list(parsed_by_id))
        }
        return {sf_id: p.contact_system_modstamp for sf_id, p in self.existing.items()}.get

    def upsert(self, row: IncomingRow) -> None:
        if row.parsed.get("MasterRecordId") and row.is_deleted:
            self.merges.append((row.sf_id, row.parsed["MasterRecordId"]))
        person = self.existing.get(row.sf_id)
        if person is None:
            self.create(self.new(row))
            return
        deleted_now = row.is_deleted and not person.is_deleted_in_salesforce
        self.write_over(person, row, custom=row.custom)
        self.update(person, deleted=deleted_now)

    def finish(self, parsed_by_id: dict[str, dict[str, Any]], coverage: TotalsCoverage) -> None:
        # Every contact of the page, not only new people: a person may have been waiting under
        # this contact id already (a lead converted into a contact OppSync could not see).
        activities = waiting_roles_link("person", parsed_by_id, self.ctx, coverage)
        activities_save(activities, coverage)
        for loser_id, master_id in self.merges:
            people_merge(loser_contact_id=loser_id, master_contact_id=master_id, coverage=coverage)


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
    _LeadPage(ctx).apply(records, fields)


class _LeadPage(PageUpsert[Person]):
    """A page of leads. A lead's values are its person's until a contact exists; a converted lead
    becomes its contact's person (its history moves along), and of two leads converted into one
    contact, the second one's person merges into the first one's."""

    model = Person
    columns = LEAD_COLUMNS
    id_field = "sf_lead_id"
    stamp_field = "lead_system_modstamp"
    deleted_field = "is_deleted_in_salesforce"
    # A person found by its contact takes the lead's id; a lead's person, its contact's id.
    also_updated = ("sf_lead_id", "sf_contact_id", "updated_at")

    def __init__(self, ctx: ApplyContext) -> None:
        super().__init__(ctx)
        self.by_lead: dict[str, Person] = {}
        self.by_contact: dict[str, Person] = {}
        self.converted_to: set[str] = set()
        self.converted_people: list[int] = []
        self.merged_leads: list[tuple[str, Person]] = []  # (lead id, the person of its contact)

    def load(self, parsed_by_id: dict[str, dict[str, Any]]) -> StampLookup:
        self.converted_to = {
            p["ConvertedContactId"] for p in parsed_by_id.values() if p.get("ConvertedContactId")
        }
        people = Person.objects.filter(
            Q(sf_lead_id__in=list(parsed_by_id)) | Q(sf_contact_id__in=self.converted_to)
        )
        self.by_lead = {p.sf_lead_id: p for p in people if p.sf_lead_id}
        self.by_contact = {p.sf_contact_id: p for p in people if p.sf_contact_id}
        return {sf_id: p.lead_system_modstamp for sf_id, p in self.by_lead.items()}.get

    def upsert(self, row: IncomingRow) -> None:
        sf_id = row.sf_id
        person = self.by_lead.get(sf_id)
        contact_id = row.parsed.get("ConvertedContactId")
        contact_person = self.by_contact.get(contact_id) if contact_id else None
        if (
            contact_person is not None
            and contact_person is not person
            and contact_person.sf_lead_id not in (None, sf_id)
        ):
            # Another lead was converted into the same contact first: its person holds the
            # contact (and that lead's id). This lead's person is merged into it, keeping its
            # own lead id so that its re-reads find it; two people never claim one contact.
            self.by_lead[sf_id] = self._written(person, row, deleted=False)
            self.merged_leads.append((sf_id, contact_person))
            return
        if contact_person is not None and person is not None and contact_person.pk != person.pk:
            # Lead conversion: one person, the contact's; the lead's history moves along.
            Activity.objects.filter(person=person).update(person=contact_person)
            self.converted_people.append(contact_person.pk)
            self.to_update.pop(person.pk, None)
            person.delete()
            person = None
        if person is None and contact_person is not None:
            person = contact_person
        person = self._written(person, row, deleted=row.is_deleted)
        if contact_id and not person.sf_contact_id:
            person.sf_contact_id = contact_id  # the contact, when it arrives, updates this person
            # Another lead of this page converted into the same contact finds this person.
            self.by_contact[contact_id] = person
        self.by_lead[sf_id] = person

    def _written(self, person: Person | None, row: IncomingRow, *, deleted: bool) -> Person:
        """The lead's person (a new one when None) queued, counted (`deleted`: as a deletion) and
        given the lead's values."""
        if person is None:
            person = Person()
            self.create(person)
        else:
            self.update(person, deleted=deleted)
        person.sf_lead_id = row.sf_id
        person.lead_system_modstamp = row.modstamp
        if person.contact_system_modstamp is None:
            # Until a contact exists, the lead's values are the person's; then the contact's win.
            for column, value in row.column_values.items():
                setattr(person, column, value)
            person.custom_fields = row.custom
            person.is_deleted_in_salesforce = row.is_deleted
        return person

    def finish(self, parsed_by_id: dict[str, dict[str, Any]], coverage: TotalsCoverage) -> None:
        self.converted_people += _merge_leads_into_contact_people(self.merged_leads)
        # A lead converted into a contact: roles waiting for that contact are the person's now.
        activities = waiting_roles_link("person", self.converted_to, self.ctx, coverage)
        activities_save(activities, coverage)
        # A converted lead's activities moved to the contact's person: their latest times too.
        refresh_person_totals(self.converted_people, coverage)


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
