"""The upsert every applier follows, written once: `PageUpsert` runs its steps, each applier's
subclass says what is particular to its object (what it reads first, what a changed row records)."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from django.db import models, transaction

from ...models import TotalsCoverage
from ...salesforce.records import FieldInfo
from ...totals import locked_coverage
from .common import ApplyContext, parse_all, split_values

Row = TypeVar("Row", bound=models.Model)
StampLookup = Callable[[str], "dt.datetime | None"]


class IncomingRow(NamedTuple):
    """One record of a page that is to be written: its Salesforce id, its parsed values and the
    values of its columns and of its custom fields (`split_values`)."""

    sf_id: str
    parsed: dict[str, Any]
    column_values: dict[str, Any]
    custom: dict[str, Any]

    @property
    def modstamp(self) -> dt.datetime:
        stamp: dt.datetime = self.parsed["SystemModstamp"]
        return stamp

    @property
    def is_deleted(self) -> bool:
        return bool(self.parsed.get("IsDeleted"))


def incoming_rows(
    parsed_by_id: dict[str, dict[str, Any]],
    stored_stamp: StampLookup | None,
    columns: dict[str, str],
    model: type[models.Model],
    ctx: ApplyContext,
) -> Iterator[IncomingRow]:
    """The rows to write. Rows whose stored SystemModstamp is not older are skipped (idempotence;
    `stored_stamp` None: no row is, as for formula values, which change without a bump); rows
    whose values do not fit are set aside (`Counters.fail`), without stopping the page."""
    for sf_id, parsed in parsed_by_id.items():
        stored = stored_stamp(sf_id) if stored_stamp is not None else None
        if ctx.is_stale(stored, parsed["SystemModstamp"]):
            ctx.counters.skipped += 1
            continue
        try:
            column_values, custom = split_values(parsed, columns, model)
        except ValueError as error:
            ctx.counters.fail(sf_id, error)
            continue
        yield IncomingRow(sf_id, parsed, column_values, custom)


class PageUpsert(abc.ABC, Generic[Row]):
    """One page of one object, written the way every applier writes (the package docstring says
    the rules). One instance per page: it holds the page's rows until they are written.

    1. Parse the page (`parse_all`: a record that does not parse is set aside).
    2. In one transaction, first the totals coverage (`locked_coverage`), before any row is
       written: a totals rebuild never runs between our reading and our writing.
    3. `load` reads what is stored of the page's records.
    4. Each record newer than its stored row (`incoming_rows`) goes to `upsert`, which queues it
       with `create` (a new row) or `update` (a stored one), counting it.
    5. The new rows are inserted and the stored ones updated, a statement per batch.
    6. `finish` records what the changes mean: activities, waiting roles linked, totals.
    """

    model: type[Row]
    columns: dict[str, str]
    # The columns of the record's Salesforce id, its SystemModstamp and its deleted flag.
    id_field: str = "sf_id"
    stamp_field: str = "system_modstamp"
    deleted_field: str = "is_deleted"
    # What an update writes besides the record's columns, custom fields, stamp and deleted flag.
    also_updated: tuple[str, ...] = ()

    def __init__(self, ctx: ApplyContext) -> None:
        self.ctx = ctx
        self.to_create: list[Row] = []
        # By primary key: a row queued twice is written once, and a queued row can be taken back.
        self.to_update: dict[int, Row] = {}

    def apply(self, records: list[dict[str, Any]], fields: dict[str, FieldInfo]) -> None:
        parsed_by_id = parse_all(records, fields, self.ctx.counters)
        if not parsed_by_id:
            return
        with transaction.atomic():
            coverage = locked_coverage()
            for row in self.incoming(parsed_by_id):
                self.upsert(row)
            manager = self.model._default_manager
            manager.bulk_create(self.to_create, batch_size=1000)
            manager.bulk_update(list(self.to_update.values()), self.update_fields(), batch_size=500)
            self.finish(parsed_by_id, coverage)

    def update_fields(self) -> list[str]:
        own = [*set(self.columns.values()), *self.also_updated]
        return [*own, "custom_fields", self.stamp_field, self.deleted_field]

    def incoming(self, parsed_by_id: dict[str, dict[str, Any]]) -> Iterator[IncomingRow]:
        """Steps 3 and 4: what is stored is read, and the records not newer are passed over."""
        return incoming_rows(parsed_by_id, self.load(parsed_by_id), self.columns, self.model, self.ctx)

    @abc.abstractmethod
    def load(self, parsed_by_id: dict[str, dict[str, Any]]) -> StampLookup:
        """Read the stored rows of the page's records; returns the stored SystemModstamp by id."""

    @abc.abstractmethod
    def upsert(self, row: IncomingRow) -> None:
        """Queue one incoming row: a new row (`new`) or the changes to the stored one."""

    def finish(self, parsed_by_id: dict[str, dict[str, Any]], coverage: TotalsCoverage) -> None:
        """After the rows are written, in the page's transaction (`coverage` is its own)."""

    # --- for `upsert` -----------------------------------------------------------------------------
    def new(self, row: IncomingRow, **values: Any) -> Row:
        """The row of a record OppSync does not hold yet; `values` besides its columns'."""
        own = {self.id_field: row.sf_id, self.stamp_field: row.modstamp, self.deleted_field: row.is_deleted}
        return self.model(**{**own, "custom_fields": row.custom, **row.column_values, **values})

    def write_over(self, stored: Row, row: IncomingRow, *, custom: dict[str, Any], **values: Any) -> None:
        """A stored row takes the record's values (`custom`: its custom fields as they are to be
        stored; `values` besides its columns')."""
        for name, value in {**row.column_values, **values}.items():
            setattr(stored, name, value)
        stored.custom_fields = custom  # type: ignore[attr-defined]  # every synced model has them
        setattr(stored, self.stamp_field, row.modstamp)
        setattr(stored, self.deleted_field, row.is_deleted)

    def create(self, new: Row) -> None:
        self.to_create.append(new)
        self.ctx.counters.created += 1

    def update(self, stored: Row, *, deleted: bool) -> None:
        """Count a row as updated (or `deleted`) and queue it, unless this page created it (its
        INSERT writes it)."""
        if stored.pk is not None:
            self.to_update[stored.pk] = stored
        if deleted:
            self.ctx.counters.deleted += 1
        else:
            self.ctx.counters.updated += 1
