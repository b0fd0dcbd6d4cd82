"""The emulated org's data: records, the delete log, fields, sessions and API usage, in SQLite.

One table per object (`records_Opportunity`, ...) holding the id, SystemModstamp, IsDeleted, a
sharing flag (`visible`: whether the integration user may see the row) and the field values as
JSON. Indexes on (SystemModstamp, Id) make windowed queries and keyset paging fast for millions of
rows; the file survives restarts.

Record semantics follow salesforce-api.md §6: every write stamps LastModifiedDate and a millisecond
SystemModstamp; the stage drives IsClosed, IsWon, ForecastCategory and the default Probability;
ExpectedRevenue is derived; deletes are soft (queryAll, /deleted) except a contact role deleted
directly, which is hard; deleting an opportunity soft-deletes its roles; purge empties the recycle
bin and moves `earliestDateAvailable` forward; lead conversion and merges behave as in an org.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from .change_events import NOT_IN_EVENTS, Change, EventBus
from .ids import KEY_PREFIXES, IdAllocator, make_id
from .schema import (
    MULTI_CURRENCY_OBJECTS,
    OBJECT_NAMES,
    STAGES_BY_NAME,
    STANDARD_FIELDS,
    FieldSpec,
    currency_field,
    custom_field_spec,
)
from .soql_filters import fold
from .timeutil import Clock, format_datetime, org_now, parse_datetime

ORG_ID = make_id("00D", 1)
INTEGRATION_USER_ID = make_id("005", 1)
DEFAULT_API_MAX = 100_000


class RecordError(Exception):
    """A write the org refuses (unknown id, bad field); `error_code` as Salesforce names it."""

    def __init__(self, error_code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status


P = ParamSpec("P")
R = TypeVar("R")


def in_transaction(method: Callable[P, R]) -> Callable[P, R]:
    """A write method of the Store runs as one org transaction (or a savepoint of the open one)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, Store)
        with store.transaction():
            return method(*args, **kwargs)

    return wrapper


def table(sobject: str) -> str:
    """The table of an object of this org. The name comes from URLs (the REST API and the control
    API), so it is checked against the schema before it goes anywhere near SQL."""
    if sobject not in OBJECT_NAMES:
        raise RecordError("NOT_FOUND", f"The requested resource does not exist: no object {sobject!r}", 404)
    return f"records_{sobject}"


class Store:
    """The org. Thread-safe: one connection guarded by a lock (the server is single-threaded;
    the sales team and generators may run beside it)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._savepoints = 0
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # SOQL compares and sorts text case-insensitively (soql_filters.py).
        self.db.create_function("sf_fold", 1, fold, deterministic=True)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-200000")
        self.clock = Clock()
        self._create_schema()
        self.ids = IdAllocator(start=int(self.meta_get("next_id_number", 100)))
        self._field_cache: dict[str, list[FieldSpec]] = {}
        self._ensure_integration_user()
        # Change Data Capture: the records written in the open transaction, published on commit.
        self.events = EventBus(self)
        self._changes: list[Change] = []
        # Who writes (the header's changeOrigin): the REST API sets it for its requests; "" is a
        # user in the UI (the control API, the sales team).
        self.change_origin = ""

    # --- schema and meta --------------------------------------------------------------------------
    def _create_schema(self) -> None:
        with self.lock:
            for sobject in OBJECT_NAMES:
                self.db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table(sobject)} (id TEXT PRIMARY KEY, system_modstamp TEXT NOT NULL, "
                    "is_deleted INTEGER NOT NULL DEFAULT 0, visible INTEGER NOT NULL DEFAULT 1, fields TEXT NOT NULL)"
                )
                self.db.execute(
                    f"CREATE INDEX IF NOT EXISTS {table(sobject)}_modstamp ON {table(sobject)} (system_modstamp, id)"
                )
            ocr = table("OpportunityContactRole")
            self.db.execute(
                f"CREATE INDEX IF NOT EXISTS {ocr}_opp ON {ocr} (json_extract(fields, '$.OpportunityId'))"
            )
            self.db.execute(
                f"CREATE INDEX IF NOT EXISTS {ocr}_contact ON {ocr} (json_extract(fields, '$.ContactId'))"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS delete_log (sobject TEXT NOT NULL, id TEXT NOT NULL, deleted_date TEXT NOT NULL)"
            )
            self.db.execute(
                "CREATE INDEX IF NOT EXISTS delete_log_date ON delete_log (sobject, deleted_date)"
            )
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, expires_at REAL NOT NULL)"
            )

    def meta_get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def meta_set(self, key: str, value: Any) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One org transaction: every write method runs in one (nested ones are savepoints), and
        its change events are appended to the event log just before COMMIT, so a rollback
        publishes nothing and events follow commit order."""
        with self.lock:
            if self.db.in_transaction:
                # Inside another transaction (a composite request with allOrNone): a savepoint,
                # so the outer one can still roll everything back.
                self._savepoints += 1
                name = f"write_{self._savepoints}"
                mark = len(self._changes)
                self.db.execute(f"SAVEPOINT {name}")
                try:
                    yield
                except BaseException:
                    self.db.execute(f"ROLLBACK TO {name}")
                    self.db.execute(f"RELEASE {name}")
                    del self._changes[mark:]
                    raise
                self.db.execute(f"RELEASE {name}")
                return
            self._changes = []
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
                published = self.events.publish(self._changes, self.change_origin, INTEGRATION_USER_ID)
            except BaseException:
                self.db.execute("ROLLBACK")
                self._changes = []
                raise
            self.db.execute("COMMIT")
            self._changes = []
            if published:
                self.events.notify()

    @contextmanager
    def acting(self, origin: str) -> Iterator[None]:
        """Writes made inside are by this client (changeOrigin, §5)."""
        previous, self.change_origin = self.change_origin, origin
        try:
            yield
        finally:
            self.change_origin = previous

    def _changed(
        self,
        sobject: str,
        change_type: str,
        record: dict[str, Any],
        before: dict[str, Any] | None = None,
    ) -> None:
        """Note a written record for its change event: an update carries the fields whose value
        changed, a create or undelete every field with a value, a delete none."""
        if change_type == "DELETE":
            values: dict[str, Any] = {}
        elif before is None:
            values = {k: v for k, v in record.items() if v is not None and k not in NOT_IN_EVENTS}
        else:
            values = {
                k: record.get(k)
                for k in dict.fromkeys([*before, *record])
                if k not in NOT_IN_EVENTS and before.get(k) != record.get(k)
            }
        nulled = [k for k, v in values.items() if v is None]
        self._changes.append(Change(sobject, change_type, record["Id"], values, nulled))

    def new_ids(self, sobject: str, count: int = 1) -> list[str]:
        ids = self.ids.reserve(KEY_PREFIXES[sobject], count)
        self.meta_set("next_id_number", self.ids.next_number)
        return ids

    def _ensure_integration_user(self) -> None:
        if self.db.execute(f"SELECT 1 FROM {table('User')} WHERE id = ?", (INTEGRATION_USER_ID,)).fetchone():
            return
        stamp = format_datetime(self.clock.now())
        values = {
            "Id": INTEGRATION_USER_ID,
            "Username": "integration@oppsync.example",
            "FirstName": "Integration",
            "LastName": "User",
            "Name": "Integration User",
            "Email": "integration@oppsync.example",
            "IsActive": True,
            "IsDeleted": False,
            "CreatedDate": stamp,
            "CreatedById": INTEGRATION_USER_ID,
            "LastModifiedDate": stamp,
            "LastModifiedById": INTEGRATION_USER_ID,
            "SystemModstamp": stamp,
        }
        with self.lock:
            self.db.execute(
                f"INSERT INTO {table('User')} (id, system_modstamp, is_deleted, visible, fields) VALUES (?, ?, 0, 1, ?)",
                (INTEGRATION_USER_ID, stamp, json.dumps(values)),
            )

    # --- fields: standard, custom, hidden by field-level security, multi-currency ------------------
    def all_fields(self, sobject: str) -> list[FieldSpec]:
        """Every field of the object, hidden ones included."""
        if sobject not in self._field_cache:
            fields = list(STANDARD_FIELDS[sobject])
            if self.meta_get("multi_currency", False) and sobject in MULTI_CURRENCY_OBJECTS:
                fields.insert(len(fields) - 6, currency_field())
            for definition in self.meta_get("custom_fields", {}).get(sobject, []):
                fields.append(custom_field_spec(definition))
            self._field_cache[sobject] = fields
        return self._field_cache[sobject]

    def visible_fields(self, sobject: str) -> list[FieldSpec]:
        """The fields the integration user's describe shows (field-level security applied)."""
        hidden = set(self.meta_get("hidden_fields", {}).get(sobject, []))
        return [spec for spec in self.all_fields(sobject) if spec.name not in hidden]

    def field_map(self, sobject: str) -> dict[str, FieldSpec]:
        return {spec.name.lower(): spec for spec in self.visible_fields(sobject)}

    def add_custom_field(self, sobject: str, definition: dict[str, Any]) -> FieldSpec:
        self._check_object(sobject)
        name = definition.get("name", "")
        if not name.endswith("__c"):
            raise RecordError("INVALID_FIELD", f"Custom field names end in __c: {name!r}")
        customs = self.meta_get("custom_fields", {})
        existing = [d for d in customs.get(sobject, []) if d["name"].lower() != name.lower()]
        customs[sobject] = [*existing, definition]
        self.meta_set("custom_fields", customs)
        self._field_cache.clear()
        self.metadata_touch([sobject])
        return custom_field_spec(definition)

    def set_field_hidden(self, sobject: str, field_name: str, hidden: bool) -> None:
        self._check_object(sobject)
        if field_name in ("Id", "SystemModstamp", "IsDeleted"):
            raise RecordError("INVALID_FIELD", f"{field_name} cannot be hidden")
        all_hidden = self.meta_get("hidden_fields", {})
        before = set(all_hidden.get(sobject, []))
        names = before | {field_name} if hidden else before - {field_name}
        all_hidden[sobject] = sorted(names)
        self.meta_set("hidden_fields", all_hidden)
        if names != before:
            self.metadata_touch([sobject])

    def set_multi_currency(self, enabled: bool, default_code: str = "USD") -> None:
        """Turn multi-currency on (CurrencyIsoCode appears, existing records get the corporate
        currency without a SystemModstamp change, as when an org enables it) or off."""
        if enabled != bool(self.meta_get("multi_currency", False)):
            self.metadata_touch(sorted(MULTI_CURRENCY_OBJECTS))  # CurrencyIsoCode comes or goes
        self.meta_set("multi_currency", enabled)
        self._field_cache.clear()
        if enabled:
            with self.lock:
                for sobject in MULTI_CURRENCY_OBJECTS:
                    self.db.execute(
                        f"UPDATE {table(sobject)} SET fields = json_set(fields, '$.CurrencyIsoCode', ?) "
                        "WHERE json_extract(fields, '$.CurrencyIsoCode') IS NULL",
                        (default_code,),
                    )

    def metadata_touch(self, sobjects: Iterable[str]) -> None:
        """The objects' metadata (what their describe shows: fields added, changed, hidden or
        shown) changed now, on the org's clock: describe's If-Modified-Since compares with it.
        The org's own time, not a record stamp: `self.clock` hands out strictly increasing stamps,
        which run ahead of the org's time after a burst of writes, and a change stamped ahead of
        the Date headers would answer every describe in full until the clock caught up."""
        now = format_datetime(org_now())
        self.meta_set(
            "metadata_changed", {**self.meta_get("metadata_changed", {}), **dict.fromkeys(sobjects, now)}
        )

    def metadata_changed_at(self, sobject: str) -> dt.datetime:
        """When the object's metadata last changed; the org's creation when it never did."""
        text = self.meta_get("metadata_changed", {}).get(sobject)
        return parse_datetime(text or self.meta_get("created_at") or self._created_at())

    def set_values_silently(self, sobject: str, field_name: str, values: dict[str, Any]) -> int:
        """Change stored values without touching SystemModstamp: what a formula field, a field
        that becomes visible, or a sharing change looks like to an incremental sync."""
        with self.lock:
            count = 0
            for record_id, value in values.items():
                count += self.db.execute(
                    f"UPDATE {table(sobject)} SET fields = json_set(fields, ?, json(?)) WHERE id = ?",
                    (f"$.{field_name}", json.dumps(value), record_id),
                ).rowcount
            return count

    def set_visible(self, sobject: str, ids: Iterable[str], visible: bool) -> int:
        """Sharing: whether the integration user sees these rows. Sharing changes do not bump
        SystemModstamp, so only an id reconciliation notices them."""
        with self.lock:
            return sum(
                self.db.execute(
                    f"UPDATE {table(sobject)} SET visible = ? WHERE id = ?", (int(visible), i)
                ).rowcount
                for i in ids
            )

    def _check_object(self, sobject: str) -> None:
        if sobject not in OBJECT_NAMES:
            raise RecordError("NOT_FOUND", "The requested resource does not exist", status=404)

    # --- reading ----------------------------------------------------------------------------------
    def get(self, sobject: str, record_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        self._check_object(sobject)
        row = self.db.execute(
            f"SELECT fields, is_deleted FROM {table(sobject)} WHERE id = ?", (record_id,)
        ).fetchone()
        if row is None or (row[1] and not include_deleted):
            return None
        return dict(json.loads(row[0]))

    def count(self, sobject: str, *, include_deleted: bool = False) -> int:
        where = "" if include_deleted else " WHERE is_deleted = 0"
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table(sobject)}{where}").fetchone()[0])

    def ids_of(self, sobject: str, *, include_deleted: bool = False) -> list[str]:
        where = "" if include_deleted else " WHERE is_deleted = 0"
        return [row[0] for row in self.db.execute(f"SELECT id FROM {table(sobject)}{where}")]

    def roles_of_opportunity(
        self, opportunity_id: str, *, deleted: bool | None = False
    ) -> list[dict[str, Any]]:
        sql = f"SELECT fields FROM {table('OpportunityContactRole')} WHERE json_extract(fields, '$.OpportunityId') = ?"
        if deleted is not None:
            sql += f" AND is_deleted = {int(deleted)}"
        return [json.loads(row[0]) for row in self.db.execute(sql, (opportunity_id,))]

    def roles_of_contact(self, contact_id: str, *, deleted: bool = False) -> list[dict[str, Any]]:
        sql = (
            f"SELECT fields FROM {table('OpportunityContactRole')} "
            f"WHERE json_extract(fields, '$.ContactId') = ? AND is_deleted = {int(deleted)}"
        )
        return [json.loads(row[0]) for row in self.db.execute(sql, (contact_id,))]

    def _cascaded_roles(self, sobject: str, record_id: str, *, deleted: bool) -> list[dict[str, Any]]:
        """The contact roles that go to the recycle bin with their opportunity or contact (and
        come back with it), as Salesforce cascades the delete."""
        if sobject == "Opportunity":
            return self.roles_of_opportunity(record_id, deleted=deleted)
        if sobject == "Contact":
            return self.roles_of_contact(record_id, deleted=deleted)
        return []

    # --- writing ----------------------------------------------------------------------------------
    def stamp(self, backdate_seconds: float = 0.0) -> str:
        now = self.clock.now()
        return format_datetime(now - dt.timedelta(seconds=backdate_seconds))

    @in_transaction
    def create(self, sobject: str, values: dict[str, Any], *, stamp: str | None = None) -> str:
        self._check_object(sobject)
        stamp = stamp or self.stamp()
        record_id = values.get("Id") or self.new_ids(sobject)[0]
        record: dict[str, Any] = {
            "Id": record_id,
            "IsDeleted": False,
            "CreatedDate": stamp,
            "CreatedById": INTEGRATION_USER_ID,
        }
        for spec in self.all_fields(sobject):
            if spec.type == "boolean":
                record.setdefault(spec.name, False)
        if any(spec.name == "OwnerId" for spec in STANDARD_FIELDS[sobject]):
            record["OwnerId"] = INTEGRATION_USER_ID
        if self.meta_get("multi_currency", False) and sobject in MULTI_CURRENCY_OBJECTS:
            record["CurrencyIsoCode"] = "USD"
        record.update(self._checked_values(sobject, values))
        self.derive_fields(sobject, record, set(values), stamp)
        record.update(
            {"LastModifiedDate": stamp, "LastModifiedById": INTEGRATION_USER_ID, "SystemModstamp": stamp}
        )
        with self.lock:
            self.db.execute(
                f"INSERT INTO {table(sobject)} (id, system_modstamp, is_deleted, visible, fields) VALUES (?, ?, 0, 1, ?)",
                (record_id, stamp, json.dumps(_compact(record))),
            )
            self._changed(sobject, "CREATE", record)
            if sobject == "OpportunityContactRole" and record.get("IsPrimary"):
                self._unset_other_primaries(record, stamp)
        return str(record_id)

    @in_transaction
    def update(
        self, sobject: str, record_id: str, values: dict[str, Any], *, stamp: str | None = None
    ) -> None:
        record = self.get(sobject, record_id)
        if record is None:
            raise RecordError(
                "ENTITY_IS_DELETED" if self.get(sobject, record_id, include_deleted=True) else "NOT_FOUND",
                "entity is deleted"
                if self.get(sobject, record_id, include_deleted=True)
                else "The requested resource does not exist",
                status=404,
            )
        checked = self._checked_values(sobject, values)
        if sobject == "OpportunityContactRole" and "OpportunityId" in checked:
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: OpportunityId."
            )
        stamp = stamp or self.stamp()
        before = dict(record)
        record.update(checked)
        self.derive_fields(sobject, record, set(values), stamp)
        record.update(
            {"LastModifiedDate": stamp, "LastModifiedById": INTEGRATION_USER_ID, "SystemModstamp": stamp}
        )
        self._write(sobject, record)
        self._changed(sobject, "UPDATE", record, before)
        if sobject == "OpportunityContactRole" and checked.get("IsPrimary"):
            self._unset_other_primaries(record, stamp)

    def _write(self, sobject: str, record: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute(
                f"UPDATE {table(sobject)} SET system_modstamp = ?, is_deleted = ?, fields = ? WHERE id = ?",
                (
                    record["SystemModstamp"],
                    int(bool(record.get("IsDeleted"))),
                    json.dumps(_compact(record)),
                    record["Id"],
                ),
            )

    def _unset_other_primaries(self, record: dict[str, Any], stamp: str) -> None:
        for other in self.roles_of_opportunity(record["OpportunityId"]):
            if other["Id"] != record["Id"] and other.get("IsPrimary"):
                before = dict(other)
                other.update({"IsPrimary": False, "LastModifiedDate": stamp, "SystemModstamp": stamp})
                self._write("OpportunityContactRole", other)
                self._changed("OpportunityContactRole", "UPDATE", other, before)

    def _checked_values(self, sobject: str, values: dict[str, Any]) -> dict[str, Any]:
        known = {spec.name.lower(): spec for spec in self.all_fields(sobject)}
        checked: dict[str, Any] = {}
        for name, value in values.items():
            spec = known.get(name.lower())
            if spec is None:
                raise RecordError("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
            if spec.name in ("Id", "SystemModstamp", "IsDeleted", "CreatedDate", "LastModifiedDate"):
                continue
            checked[spec.name] = value
        return checked

    def derive_fields(self, sobject: str, record: dict[str, Any], changed: set[str], stamp: str) -> None:
        """The fields an org computes itself."""
        if sobject in ("Contact", "Lead", "User"):
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
        if sobject == "Lead":
            record.setdefault("Status", "Open - Not Contacted")
        if sobject != "Opportunity":
            return
        stage = STAGES_BY_NAME.get(record.get("StageName") or "")
        if stage and ("StageName" in changed or "IsClosed" not in record):
            record["IsClosed"] = stage["closed"]
            record["IsWon"] = stage["won"]
            record["ForecastCategory"], record["ForecastCategoryName"] = stage["forecast"]
            if "Probability" not in changed:
                record["Probability"] = float(stage["probability"])
            record["LastStageChangeDate"] = stamp
        amount, probability = record.get("Amount"), record.get("Probability")
        record["ExpectedRevenue"] = (
            round(float(amount) * float(probability) / 100, 2)
            if amount is not None and probability is not None
            else None
        )
        if record.get("CloseDate"):
            close = dt.date.fromisoformat(record["CloseDate"])
            quarter = (close.month - 1) // 3 + 1
            record.update(
                {"FiscalYear": close.year, "FiscalQuarter": quarter, "Fiscal": f"{close.year} {quarter}"}
            )

    @in_transaction
    def delete(self, sobject: str, record_id: str, *, stamp: str | None = None) -> None:
        """Delete as the org does: to the recycle bin (soft), except a contact role deleted
        directly, which is gone at once (hard). Either way the delete log records it."""
        record = self.get(sobject, record_id)
        if record is None:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", status=404)
        stamp = stamp or self.stamp()
        with self.lock:
            if sobject == "OpportunityContactRole":
                self.db.execute(f"DELETE FROM {table(sobject)} WHERE id = ?", (record_id,))
            else:
                record.update({"IsDeleted": True, "SystemModstamp": stamp, "LastModifiedDate": stamp})
                self._write(sobject, record)
            self._log_delete(sobject, record_id, stamp)
            self._changed(sobject, "DELETE", record)
            for role in self._cascaded_roles(sobject, record_id, deleted=False):
                role.update({"IsDeleted": True, "SystemModstamp": stamp})
                self._write("OpportunityContactRole", role)
                self._log_delete("OpportunityContactRole", role["Id"], stamp)
                self._changed("OpportunityContactRole", "DELETE", role)

    def _log_delete(self, sobject: str, record_id: str, stamp: str) -> None:
        self.db.execute(
            "INSERT INTO delete_log (sobject, id, deleted_date) VALUES (?, ?, ?)", (sobject, record_id, stamp)
        )

    @in_transaction
    def undelete(self, sobject: str, record_id: str) -> None:
        record = self.get(sobject, record_id, include_deleted=True)
        if record is None or not record.get("IsDeleted"):
            raise RecordError("UNDELETE_FAILED", "Entity is not in the recycle bin")
        stamp = self.stamp()
        with self.lock:
            record.update({"IsDeleted": False, "SystemModstamp": stamp, "LastModifiedDate": stamp})
            self._write(sobject, record)
            self.db.execute("DELETE FROM delete_log WHERE sobject = ? AND id = ?", (sobject, record_id))
            self._changed(sobject, "UNDELETE", record)
            for role in self._cascaded_roles(sobject, record_id, deleted=True):
                # A role whose other parent is still in the recycle bin stays there with it.
                other = (
                    ("Contact", role.get("ContactId"))
                    if sobject == "Opportunity"
                    else ("Opportunity", role.get("OpportunityId"))
                )
                if other[1] and self.get(other[0], other[1]) is None:
                    continue
                role.update({"IsDeleted": False, "SystemModstamp": stamp})
                self._write("OpportunityContactRole", role)
                self._changed("OpportunityContactRole", "UNDELETE", role)
                self.db.execute(
                    "DELETE FROM delete_log WHERE sobject = 'OpportunityContactRole' AND id = ?",
                    (role["Id"],),
                )

    def purge(self) -> None:
        """Empty the recycle bin: deleted rows leave queryAll, the delete log is purged and
        `earliestDateAvailable` moves to now, as after Salesforce's periodic purge."""
        now = self.stamp()
        with self.lock:
            for sobject in OBJECT_NAMES:
                self.db.execute(f"DELETE FROM {table(sobject)} WHERE is_deleted = 1")
            self.db.execute("DELETE FROM delete_log WHERE deleted_date <= ?", (now,))
            self.meta_set("earliest_date_available", now)

    @in_transaction
    def merge(self, sobject: str, master_id: str, loser_ids: list[str]) -> None:
        """Merge losers into the master: losers are soft-deleted with MasterRecordId; a merged
        contact's roles move to the master."""
        if sobject not in ("Contact", "Lead", "Account"):
            raise RecordError("INVALID_TYPE", f"{sobject} cannot be merged")
        if self.get(sobject, master_id) is None:
            raise RecordError("NOT_FOUND", "The requested resource does not exist", status=404)
        for loser_id in loser_ids:
            if sobject == "Contact":
                for role in self.roles_of_contact(loser_id):
                    self.update("OpportunityContactRole", role["Id"], {"ContactId": master_id})
            record = self.get(sobject, loser_id)
            if record is None:
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted", status=404)
            stamp = self.stamp()
            record.update(
                {
                    "IsDeleted": True,
                    "MasterRecordId": master_id,
                    "SystemModstamp": stamp,
                    "LastModifiedDate": stamp,
                }
            )
            with self.lock:
                self._write(sobject, record)
                self._log_delete(sobject, loser_id, stamp)
                self._changed(sobject, "DELETE", record)
        self.update(sobject, master_id, {})

    @in_transaction
    def convert_lead(
        self,
        lead_id: str,
        *,
        contact_id: str | None = None,
        account_id: str | None = None,
        create_opportunity: bool = True,
        opportunity_name: str | None = None,
    ) -> dict[str, str | None]:
        """Convert a lead: an account and a contact (or existing ones), optionally an opportunity
        with the contact as primary role; the lead stays, marked converted."""
        lead = self.get("Lead", lead_id)
        if lead is None:
            raise RecordError("NOT_FOUND", "The requested resource does not exist", status=404)
        if lead.get("IsConverted"):
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        if account_id is None:
            account_id = self.create("Account", {"Name": lead.get("Company") or lead.get("LastName")})
        if contact_id is None:
            contact_id = self.create(
                "Contact",
                {
                    "AccountId": account_id,
                    "FirstName": lead.get("FirstName"),
                    "LastName": lead.get("LastName"),
                    "Email": lead.get("Email"),
                    "Phone": lead.get("Phone"),
                    "Title": lead.get("Title"),
                    "LeadSource": lead.get("LeadSource"),
                },
            )
        opportunity_id = None
        if create_opportunity:
            opportunity_id = self.create(
                "Opportunity",
                {
                    "AccountId": account_id,
                    "Name": opportunity_name or f"{lead.get('Company') or lead.get('LastName')}-",
                    "StageName": "Prospecting",
                    "CloseDate": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
                    "LeadSource": lead.get("LeadSource"),
                },
            )
            self.create(
                "OpportunityContactRole",
                {"OpportunityId": opportunity_id, "ContactId": contact_id, "IsPrimary": True},
            )
        self.update(
            "Lead",
            lead_id,
            {
                "IsConverted": True,
                "ConvertedDate": dt.date.today().isoformat(),
                "ConvertedAccountId": account_id,
                "ConvertedContactId": contact_id,
                "ConvertedOpportunityId": opportunity_id,
                "Status": "Closed - Converted",
            },
        )
        return {"accountId": account_id, "contactId": contact_id, "opportunityId": opportunity_id}

    # --- getUpdated / getDeleted ------------------------------------------------------------------
    def updated_ids(self, sobject: str, start: str, end: str) -> list[str]:
        rows = self.db.execute(
            f"SELECT id FROM {table(sobject)} WHERE system_modstamp >= ? AND system_modstamp < ? "
            "AND is_deleted = 0 AND visible = 1 ORDER BY system_modstamp, id",
            (start, end),
        )
        return [row[0] for row in rows]

    def deleted_records(self, sobject: str, start: str, end: str) -> list[dict[str, str]]:
        rows = self.db.execute(
            "SELECT id, deleted_date FROM delete_log WHERE sobject = ? AND deleted_date >= ? AND deleted_date < ? "
            "ORDER BY deleted_date, id",
            (sobject, start, end),
        )
        return [{"id": row[0], "deletedDate": row[1]} for row in rows]

    def earliest_date_available(self) -> str:
        return str(
            self.meta_get("earliest_date_available") or self.meta_get("created_at") or self._created_at()
        )

    def _created_at(self) -> str:
        created = format_datetime(self.clock.now().replace(second=0, microsecond=0))
        self.meta_set("created_at", created)
        return created

    # --- sessions ---------------------------------------------------------------------------------
    def session_add(self, token: str, expires_at: float) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO sessions (token, expires_at) VALUES (?, ?)", (token, expires_at)
            )

    def session_valid(self, token: str, now: float) -> bool:
        row = self.db.execute("SELECT expires_at FROM sessions WHERE token = ?", (token,)).fetchone()
        return row is not None and row[0] > now

    def session_expires_at(self, token: str) -> float | None:
        row = self.db.execute("SELECT expires_at FROM sessions WHERE token = ?", (token,)).fetchone()
        return float(row[0]) if row else None

    def sessions_expire_all(self) -> None:
        with self.lock:
            self.db.execute("DELETE FROM sessions")
        self.events.notify()  # open Pub/Sub streams end with UNAUTHENTICATED

    # --- API usage (a rolling daily counter, like DailyApiRequests) -------------------------------
    def api_usage(self) -> tuple[int, int]:
        today = dt.date.today().isoformat()
        usage = self.meta_get("api_usage", {})
        return int(usage.get(today, 0)), int(self.meta_get("api_max", DEFAULT_API_MAX))

    def api_count(self, calls: int = 1) -> tuple[int, int]:
        today = dt.date.today().isoformat()
        with self.lock:
            usage = self.meta_get("api_usage", {})
            usage = {today: int(usage.get(today, 0)) + calls}
            self.meta_set("api_usage", usage)
        return self.api_usage()

    def api_set(self, used: int | None = None, maximum: int | None = None) -> None:
        if used is not None:
            self.meta_set("api_usage", {dt.date.today().isoformat(): used})
        if maximum is not None:
            self.meta_set("api_max", maximum)

    # --- bulk loading (the generator) -------------------------------------------------------------
    def insert_many(
        self, sobject: str, records: list[dict[str, Any]], *, hidden_ids: set[str] | None = None
    ) -> None:
        """Insert fully formed records in one statement batch (no derivation, no per-row stamp)."""
        hidden_ids = hidden_ids or set()
        with self.lock:
            self.db.executemany(
                f"INSERT INTO {table(sobject)} (id, system_modstamp, is_deleted, visible, fields) VALUES (?, ?, 0, ?, ?)",
                [
                    (r["Id"], r["SystemModstamp"], 0 if r["Id"] in hidden_ids else 1, json.dumps(_compact(r)))
                    for r in records
                ],
            )


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    """Nulls are not stored: a missing key reads back as null."""
    return {key: value for key, value in record.items() if value is not None}


def minute_floor(text: str) -> str:
    return format_datetime(parse_datetime(text).replace(second=0, microsecond=0))
