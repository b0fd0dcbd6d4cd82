"""The smart-list filters and the operators of each field type, as tables (contract §4).

The API catalog (`GET /api/v1/filters/`), the builder in the admin and the validation of a saved
definition are all generated from these tables and from the synced FieldDefinition rows, so a
field that appears in Salesforce is a constraint as soon as describe has seen it (about a minute),
with no code change. Adding a filter is adding one entry to FILTERS (and its compiler in
`evaluate.py`; a test fails when one is missing). Adding an operator is adding one entry to
`operators.DECLARED` (label, field types, value shape and query); OPERATORS and
OPERATORS_BY_TYPE here index the entries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from opportunities.models import ActivityType, FieldDefinition, Opportunity

from .operators import DECLARED, Operator

FieldType = Literal["text", "picklist", "number", "currency", "percent", "date", "datetime", "boolean"]
FIELD_TYPES: tuple[FieldType, ...] = (
    "text",
    "picklist",
    "number",
    "currency",
    "percent",
    "date",
    "datetime",
    "boolean",
)

# The operators of each field type, indexed from their entries (`operators.DECLARED`): the
# catalog lists a type's operators in the order they are declared.
OPERATORS: dict[str, Operator] = {}
OPERATORS_BY_TYPE: dict[FieldType, list[str]] = {}


def register_operator(entry: Operator) -> None:
    """Declare an operator: from now on the catalog lists it under its types, validation accepts
    it and evaluation runs its query."""
    if entry.key in OPERATORS:
        raise ValueError(f"operator {entry.key!r} is declared already")
    OPERATORS[entry.key] = entry
    _index_operators()


def unregister_operator(key: str) -> None:
    """Take an operator back out (a test's own operator, once the test is done)."""
    del OPERATORS[key]
    _index_operators()


def _index_operators() -> None:
    # In place: modules that imported the tables see every change.
    OPERATORS_BY_TYPE.clear()
    for kind in FIELD_TYPES:
        OPERATORS_BY_TYPE[kind] = [key for key, entry in OPERATORS.items() if kind in entry.types]


for _entry in DECLARED:
    register_operator(_entry)

TIME_FRAMES = [
    "today", "yesterday", "this_week", "last_week", "this_month", "last_month",
    "this_quarter", "last_quarter", "this_year", "last_year",
]  # fmt: skip
RELATIVE_UNITS = ("day", "week", "month", "year")

# Salesforce describe types -> our field types.
SALESFORCE_TYPES: dict[str, FieldType] = {
    "picklist": "picklist",
    "multipicklist": "picklist",
    "combobox": "picklist",
    "double": "number",
    "int": "number",
    "long": "number",
    "currency": "currency",
    "percent": "percent",
    "date": "date",
    "datetime": "datetime",
    "boolean": "boolean",
}


def field_type_of(salesforce_type: str) -> FieldType:
    """Everything else (string, textarea, email, phone, url, id, reference, ...) is text."""
    return SALESFORCE_TYPES.get(salesforce_type, "text")


FilterKind = Literal["opportunity", "activity", "aggregate", "person", "smart_list"]


@dataclass(frozen=True)
class FilterSpec:
    key: str
    label: str
    group: str
    kind: FilterKind
    activity_type: str = ""
    negated: bool = False
    value_type: FieldType | None = None
    # An aggregate's column over the person's opportunities.
    aggregate: str = ""
    needs_field: bool = False


OPPORTUNITIES = "Opportunities"
ACTIVITY = "Opportunity activity"
TOTALS = "Opportunity totals"
PEOPLE = "Person attributes"
LISTS = "Lists"

FILTERS: dict[str, FilterSpec] = {
    spec.key: spec
    for spec in (
        FilterSpec("has_opportunity", "Has Opportunity", OPPORTUNITIES, "opportunity"),
        FilterSpec(
            "opportunity_was_updated", "Opportunity was Updated", ACTIVITY, "activity",
            ActivityType.OPPORTUNITY_UPDATED, needs_field=True,
        ),
        FilterSpec(
            "not_opportunity_was_updated", "Not Opportunity was Updated", ACTIVITY, "activity",
            ActivityType.OPPORTUNITY_UPDATED, negated=True, needs_field=True,
        ),
        FilterSpec("was_added_to_opportunity", "Was Added to Opportunity", ACTIVITY, "activity", ActivityType.ADDED_TO_OPPORTUNITY),
        FilterSpec(
            "not_was_added_to_opportunity", "Not Was Added to Opportunity", ACTIVITY, "activity",
            ActivityType.ADDED_TO_OPPORTUNITY, negated=True,
        ),
        FilterSpec(
            "was_removed_from_opportunity", "Was Removed from Opportunity", ACTIVITY, "activity",
            ActivityType.REMOVED_FROM_OPPORTUNITY,
        ),
        FilterSpec(
            "not_was_removed_from_opportunity", "Not Was Removed from Opportunity", ACTIVITY, "activity",
            ActivityType.REMOVED_FROM_OPPORTUNITY, negated=True,
        ),
        FilterSpec("total_opty_amount", "Total Opty Amount", TOTALS, "aggregate", value_type="currency", aggregate="total_opty_amount"),
        FilterSpec("number_of_optys", "Number of Optys", TOTALS, "aggregate", value_type="number", aggregate="number_of_optys"),
        FilterSpec(
            "total_opty_expected_revenue", "Total Opty Expected Revenue", TOTALS, "aggregate",
            value_type="currency", aggregate="total_opty_expected_revenue",
        ),
        FilterSpec("person_field", "Person attribute", PEOPLE, "person", needs_field=True),
        FilterSpec("member_of_smart_list", "Member of Smart List", LISTS, "smart_list"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class ConstraintField:
    """A field a constraint (or a person_field filter) can name, and how to read it."""

    field: str
    label: str
    type: FieldType
    values: tuple[str, ...] = ()
    # Where the value lives: a model column, or a key of `custom_fields`.
    column: str = ""
    custom_key: str = ""
    # "role" for Role / IsPrimary (the contact role's, or the activity's own); "activity" for
    # date_of_activity, min_number_of_times, new_value and previous_value.
    source: Literal["opportunity", "role", "activity", "person"] = "opportunity"
    operators: tuple[str, ...] = dataclasses.field(default=())
    # A multi-select picklist: the value is a set stored as "A;B" (Salesforce's form); `is` matches
    # when the set holds any of the values, `is not` when it holds none of them.
    multiple: bool = False

    def allowed_operators(self) -> list[str]:
        return list(self.operators) if self.operators else OPERATORS_BY_TYPE[self.type]


def opportunity_fields() -> dict[str, ConstraintField]:
    """Every active Opportunity field describe shows, by API name, standard and custom alike."""
    fields = {}
    for definition in FieldDefinition.objects.filter(sobject="Opportunity", is_active=True).order_by("label"):
        column = Opportunity.SALESFORCE_COLUMNS.get(definition.api_name, "")
        fields[definition.api_name] = ConstraintField(
            field=definition.api_name,
            label=definition.label,
            type=field_type_of(definition.field_type),
            values=tuple(definition.picklist_values or ()),
            column=column,
            custom_key="" if column else definition.api_name,
            multiple=definition.field_type == "multipicklist",
        )
    return fields


def role_fields() -> dict[str, ConstraintField]:
    roles = FieldDefinition.objects.filter(sobject="OpportunityContactRole", api_name="Role").first()
    values = tuple(roles.picklist_values or ()) if roles else ()
    return {
        "Role": ConstraintField(
            "Role", "Role", "picklist" if values else "text", values, column="role", source="role"
        ),
        "IsPrimary": ConstraintField(
            "IsPrimary", "Is Primary", "boolean", column="is_primary", source="role"
        ),
    }


def activity_fields() -> dict[str, ConstraintField]:
    return {
        "date_of_activity": ConstraintField(
            "date_of_activity", "Date of Activity", "datetime", column="occurred_at", source="activity"
        ),
        "min_number_of_times": ConstraintField(
            "min_number_of_times",
            "Min. Number of Times",
            "number",
            source="activity",
            operators=("at_least",),
        ),
    }


PERSON_COLUMNS: dict[str, tuple[str, FieldType]] = {
    "email": ("Email", "text"),
    "first_name": ("First Name", "text"),
    "last_name": ("Last Name", "text"),
    "company": ("Company", "text"),
    "title": ("Title", "text"),
    "lead_source": ("Lead Source", "text"),
    "phone": ("Phone", "text"),
    "sf_contact_id": ("Salesforce Contact Id", "text"),
    "sf_lead_id": ("Salesforce Lead Id", "text"),
    "is_deleted_in_salesforce": ("Is Deleted in Salesforce", "boolean"),
    "created_at": ("First Synced", "datetime"),
}


def person_fields() -> dict[str, ConstraintField]:
    """Person columns, plus custom Contact/Lead fields describe shows now (by API name)."""
    fields = {
        name: ConstraintField(name, label, kind, column=name, source="person")
        for name, (label, kind) in PERSON_COLUMNS.items()
    }
    for definition in FieldDefinition.objects.filter(
        sobject__in=("Contact", "Lead"), is_active=True, is_custom=True
    ).order_by("label"):
        fields.setdefault(
            definition.api_name,
            ConstraintField(
                definition.api_name,
                definition.label,
                field_type_of(definition.field_type),
                tuple(definition.picklist_values or ()),
                custom_key=definition.api_name,
                source="person",
                multiple=definition.field_type == "multipicklist",
            ),
        )
    return fields


@dataclass
class Catalog:
    """Everything a definition may name right now; built once per request from FieldDefinition."""

    opportunity: dict[str, ConstraintField]
    role: dict[str, ConstraintField]
    activity: dict[str, ConstraintField]
    person: dict[str, ConstraintField]
    # Opportunity fields that existed once but are no longer active: named in warnings.
    inactive_opportunity: set[str]

    @classmethod
    def load(cls) -> Catalog:
        inactive = set(
            FieldDefinition.objects.filter(sobject="Opportunity", is_active=False).values_list(
                "api_name", flat=True
            )
        )
        return cls(opportunity_fields(), role_fields(), activity_fields(), person_fields(), inactive)

    def constraint_fields(self, spec: FilterSpec) -> dict[str, ConstraintField]:
        """The constraints a filter offers: opportunity fields everywhere; Role and IsPrimary where
        a contact role (or an added/removed activity) carries them; activity fields for activity filters."""
        fields = dict(self.opportunity)
        if spec.kind in ("opportunity",) or spec.activity_type in (
            ActivityType.ADDED_TO_OPPORTUNITY,
            ActivityType.REMOVED_FROM_OPPORTUNITY,
        ):
            fields.update(self.role)
        if spec.kind == "activity":
            fields.update(self.activity)
        return fields


def catalog_json(catalog: Catalog) -> list[dict[str, object]]:
    """The `GET /api/v1/filters/` body (contract §3)."""

    def constraint(cf: ConstraintField) -> dict[str, object]:
        body: dict[str, object] = {
            "field": cf.field,
            "label": cf.label,
            "type": cf.type,
            "operators": cf.allowed_operators(),
        }
        if cf.type == "picklist":
            body["values"] = list(cf.values)
            if cf.multiple:
                body["multiple"] = True  # a multi-select picklist: `is` matches any value it holds
        return body

    entries: list[dict[str, object]] = []
    for spec in FILTERS.values():
        entry: dict[str, object] = {"filter": spec.key, "label": spec.label, "group": spec.group}
        if spec.kind in ("opportunity", "activity", "aggregate"):
            entry["constraints"] = [constraint(cf) for cf in catalog.constraint_fields(spec).values()]
        else:
            entry["constraints"] = []
        if spec.kind == "aggregate":
            assert spec.value_type is not None
            entry["operators"] = OPERATORS_BY_TYPE[spec.value_type]
            entry["value_type"] = spec.value_type
        if spec.kind == "activity" and spec.needs_field:
            entry["fields"] = [constraint(cf) for cf in catalog.opportunity.values()]
            entry["value_constraints"] = ["new_value", "previous_value"]
        if spec.kind == "person":
            entry["fields"] = [constraint(cf) for cf in catalog.person.values()]
        if spec.kind == "smart_list":
            entry["operators"] = ["is", "is_not"]
            entry["value_type"] = "smart_list"
        entries.append(entry)
    return entries
