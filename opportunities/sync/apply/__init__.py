"""Apply pages of Salesforce records to OppSync's tables, and record what changed as activities.

Every function here is idempotent: a row whose stored SystemModstamp is not older than the
incoming one is skipped, so re-reading a window (the lookback, a retry after a crash) changes
nothing and records no activity twice. Activities come from comparing what was stored with what
arrived (product.md §2):

- a contact role that becomes *linked* (live, with a known person and a live opportunity) records
  Added to Opportunity; one that stops being linked records Removed from Opportunity;
- a changed opportunity field records one Opportunity is Updated per field and per linked person.

One module per object (`opportunity`, `contact_role`, `people`), each a subclass of the one
upsert skeleton (`upsert.PageUpsert`: parse, lock the totals coverage, read what is stored, skip
what is not newer, insert and update, record); what they share in `common` (parsing, activities,
the linker of roles that waited for their opportunity or person); the back-fill of fields that
appear in `backfill`. The engine reaches them through `objects.SPECS`.
"""

from .backfill import values_backfill
from .common import (
    CONTACT_COLUMNS,
    LEAD_COLUMNS,
    NOT_STORED,
    NOT_TRACKED,
    OPPORTUNITY_COLUMNS,
    ROLE_COLUMNS,
    ApplyContext,
    Counters,
    parse_record,
    split_values,
)
from .contact_role import contact_roles_apply, contact_roles_delete
from .opportunity import opportunities_apply, opportunities_delete, opportunity_formulas_refresh
from .people import contacts_apply, leads_apply, people_flag_deleted, people_merge

__all__ = [
    "CONTACT_COLUMNS",
    "LEAD_COLUMNS",
    "NOT_STORED",
    "NOT_TRACKED",
    "OPPORTUNITY_COLUMNS",
    "ROLE_COLUMNS",
    "ApplyContext",
    "Counters",
    "contact_roles_apply",
    "contact_roles_delete",
    "contacts_apply",
    "leads_apply",
    "opportunities_apply",
    "opportunities_delete",
    "opportunity_formulas_refresh",
    "parse_record",
    "people_flag_deleted",
    "people_merge",
    "split_values",
    "values_backfill",
]
