"""The sync cycle: Salesforce to OppSync in seconds, with nothing lost (salesforce-api.md §4.6).

A cycle (`SyncEngine.run_cycle`, in `cycle`) runs under a lease, so only one runs anywhere. It is
a row of phases, one module each; a phase is handed what it works on (`context.CycleRun`, the
dataclasses below) and returns what the next one reads:

1. Bookkeeping (`bookkeeping`): above `SALESFORCE_QUOTA_PAUSE` of the org's daily limit the cycle
   pauses (`context.quota_guard`); the objects whose turn it is (`objects_due`: one that failed
   waits, doubling, for its retry).
2. Describe (`describe`): an object's first cycle describes it in a call of its own
   (`first_describes` → `Described`); after that describe rides along in the Composite request
   in every cycle with If-Modified-Since (a 304 costs nothing), unconditionally once a
   SALESFORCE_DESCRIBE_INTERVAL and in `salesforce_sync`, and at once when a query reports
   INVALID_FIELD. Fields that appeared are back-filled for the rows OppSync holds.
3. Window (`composite`, `window`): one Composite request (one API call) carries, per object in
   the order Contact, Lead, Opportunity, OpportunityContactRole, the window query
   `SystemModstamp > watermark - lookback AND SystemModstamp <= now` on queryAll, plus the
   describes and the due getDeleted windows (`cycle_plan` → `CyclePlan` of `ObjectPlan`s →
   `Answers`). An idle cycle costs exactly that one call. Pages beyond the first follow `nextRecordsUrl`; an
   initial load above `SALESFORCE_BULK_THRESHOLD` rows goes through a Bulk API 2.0 queryAll job
   instead; a QUERY_TIMEOUT halves the window. The watermark moves to the window's upper bound
   only after the whole window committed.
4. Apply (`pages`): each page in one transaction (idempotent upserts, activities from the
   differences), record by record when it fails on its own; the records that still fail are set
   aside and re-read by id when their retry comes (`retry`).
5. Deletes (`deletes`): getDeleted's answer and, periodically, on request or when getDeleted
   cannot cover the gap, an id reconciliation find hard deletes (and rows that became visible);
   formula values are refreshed with the reconcile.
6. Bookkeeping again: each object's run and state (`ObjectWork`), the cycle's outcome, the lease
   released, `activities_recorded` sent.

Whatever asks for a cycle (the beat, the operator's `salesforce_sync`, a push wake-up), it runs
these phases: they are the only path that writes, and what a cycle reads is decided in one place,
`composite.cycle_plan`.
"""

from ..objects import SYNCED_OBJECTS
from .composite import EPOCH
from .context import Progress
from .cycle import SyncEngine
from .pages import ALL_ALIKE_MINIMUM
from .queries import IDS_PER_QUERY, ids_soql_chunks, window_soql

__all__ = [
    "ALL_ALIKE_MINIMUM",
    "EPOCH",
    "IDS_PER_QUERY",
    "SYNCED_OBJECTS",
    "Progress",
    "SyncEngine",
    "ids_soql_chunks",
    "window_soql",
]
