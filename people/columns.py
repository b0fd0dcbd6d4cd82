"""The columns of a person that clients see: the API's person JSON (contract §3) and the smart-list
member export (CSV) both read this one declaration, so a new column is one entry here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PersonColumn:
    """One column of a person as the API and the member export show it."""

    name: str
    # In the API's person JSON (people/api/serializers.py), in the order declared.
    in_api: bool = True
    # Offered to the member export (smartlists: `?fields=` of members.csv).
    in_export: bool = True
    # A member table may sort by it.
    sortable: bool = False
    # Salesforce's bookkeeping rather than the person's own details: the export offers these
    # after the others, as a spreadsheet reader looks for names first.
    bookkeeping: bool = False


PERSON_COLUMNS: tuple[PersonColumn, ...] = (
    PersonColumn("id", sortable=True),
    PersonColumn("sf_contact_id", bookkeeping=True),
    PersonColumn("sf_lead_id", bookkeeping=True),
    # The person's own details.
    *(
        PersonColumn(name, sortable=True)
        for name in ("email", "first_name", "last_name", "company", "title", "lead_source")
    ),
    # Not in the contract's person JSON.
    PersonColumn("phone", in_api=False),
    PersonColumn("is_deleted_in_salesforce", bookkeeping=True),
    # The JSON of the person's custom fields: an object, no CSV column.
    PersonColumn("custom_fields", in_export=False),
)

# The API's person fields, in the JSON's order.
API_PERSON_FIELDS: list[str] = [column.name for column in PERSON_COLUMNS if column.in_api]

# The columns a member export may name, in the order offered: the person's own, then bookkeeping
# (`sorted` is stable, so each keeps its declared order).
EXPORT_PERSON_FIELDS: list[str] = [
    column.name for column in sorted((c for c in PERSON_COLUMNS if c.in_export), key=lambda c: c.bookkeeping)
]

SORTABLE_PERSON_FIELDS: frozenset[str] = frozenset(
    column.name for column in PERSON_COLUMNS if column.sortable
)
