"""Change Data Capture in the emulated org: the change events its writes publish (salesforce-api.md
§5 and §5.1), kept in an event log table beside the records.

The Store collects one `Change` per record written inside `Store.transaction()`; on commit the
`EventBus` turns them into events (records changed the same way merge into one event with several
`recordIds`), encodes them in Avro with the object's current schema and appends them to the
`change_events` table in the same SQLite transaction, so a rolled-back write publishes nothing and
events keep commit order. The table's row id is the replay id (AUTOINCREMENT: never reused after
retention removes old rows). The Pub/Sub server (pubsub.py) reads the log.

Not emulated: compound fields are flat (their components are fields of their own, there are no
`"<parentPos>-0x..."` entries), `diffFields` stays empty, and the generator's initial org (the
`--generate` load, the control API's `generate`) is history from before CDC: it publishes nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import fastavro

from .schema import OBJECT_NAMES, FieldSpec
from .timeutil import org_now, parse_datetime

if TYPE_CHECKING:
    from .store import Store

CDC_OBJECTS = ["Opportunity", "Contact", "Lead", "OpportunityContactRole"]
CHANGE_TYPES = [
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
]
DEFAULT_RETENTION_SECONDS = 72 * 3600
# Unlimited and Performance editions' daily allowance (§5.1 Allocations).
DEFAULT_DELIVERIES_MAX = 50_000
# Not in change events (§5.1): the row's own bookkeeping.
NOT_IN_EVENTS = {"Id", "SystemModstamp", "IsDeleted"}
# Stamped per row by the emulator (a millisecond apart within one request), where Salesforce gives
# every row of a transaction the same time: left out when deciding whether rows changed "the same way".
AUDIT_FIELDS = {"CreatedDate", "LastModifiedDate", "LastStageChangeDate"}
REPLAY_ID_BYTES = 8

_AVRO_TYPES: dict[str, Any] = {
    "boolean": "boolean",
    "int": "int",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "date": {"type": "int", "logicalType": "date"},
    "datetime": {"type": "long", "logicalType": "timestamp-millis"},
}


def change_event_name(sobject: str) -> str:
    return f"{sobject}ChangeEvent"


def encode_replay_id(number: int) -> bytes:
    """Opaque to clients (§5.1: store them, never compute them); here 8 big-endian bytes."""
    return struct.pack(">Q", number)


def decode_replay_id(raw: bytes) -> int | None:
    """The position a replay id stands for, or None for bytes this org never handed out."""
    if len(raw) != REPLAY_ID_BYTES:
        return None
    return int(struct.unpack(">Q", raw)[0])


def changed_fields_bitmap(schema_fields: list[str], names: list[str]) -> str:
    """§5.1: a hex string `0x...` whose bit i (counting from the least significant) means the
    schema's field i (ChangeEventHeader is field 0); an even number of digits, as bytes."""
    bits = 0
    positions = {name: index for index, name in enumerate(schema_fields)}
    for name in names:
        bits |= 1 << positions[name]
    digits = format(bits, "X")
    return "0x" + digits.rjust(len(digits) + len(digits) % 2, "0")


def event_fields(specs: list[FieldSpec]) -> list[FieldSpec]:
    """The object's fields an event carries: describe's (FLS-hidden ones are already out), less
    formula fields, compound fields and the row's bookkeeping."""
    return [
        spec
        for spec in specs
        if spec.name not in NOT_IN_EVENTS and not spec.calculated and spec.type not in ("address", "location")
    ]


def avro_schema(sobject: str, specs: list[FieldSpec]) -> dict[str, Any]:
    """The Avro schema of the object's change events: ChangeEventHeader, then each field as a
    union with null (§5.1 Payload)."""
    header = {
        "type": "record",
        "name": "ChangeEventHeader",
        "namespace": "com.sforce.eventbus",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": {"type": "array", "items": "string"}},
            {
                "name": "changeType",
                "type": {
                    "type": "enum",
                    "name": "ChangeType",
                    "namespace": "com.sforce.eventbus",
                    "symbols": CHANGE_TYPES,
                },
            },
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": {"type": "array", "items": "string"}},
            {"name": "diffFields", "type": {"type": "array", "items": "string"}},
            {"name": "changedFields", "type": {"type": "array", "items": "string"}},
        ],
    }
    fields: list[dict[str, Any]] = [{"name": "ChangeEventHeader", "type": header}]
    for spec in event_fields(specs):
        fields.append(
            {"name": spec.name, "type": ["null", _AVRO_TYPES.get(spec.type, "string")], "default": None}
        )
    return {
        "type": "record",
        "name": change_event_name(sobject),
        "namespace": "com.sforce.eventbus",
        "fields": fields,
    }


def _avro_value(spec_type: str, value: Any) -> Any:
    if value is None:
        return None
    if spec_type == "boolean":
        return bool(value)
    if spec_type == "int":
        return int(value)
    if spec_type in ("double", "currency", "percent"):
        return float(value)
    if spec_type == "date":
        return dt.date.fromisoformat(str(value)[:10])
    if spec_type == "datetime":
        return parse_datetime(str(value))
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Change:
    """One record written in a transaction: its new values (the changed ones for an update)."""

    sobject: str
    change_type: str
    record_id: str
    values: dict[str, Any] = field(default_factory=dict)
    # Fields an update set to null.
    nulled: list[str] = field(default_factory=list)


@dataclass
class Schema:
    schema_id: str
    json_text: str
    field_names: list[str]
    specs: list[FieldSpec]
    parsed: Any


class EventBus:
    """The org's change-event log: selection, schemas, publishing, retention, delivery counter."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._schemas: dict[str, Schema] = {}
        # Fault: the next N events are lost (never published).
        self.drop_next = 0
        # Called after every commit that published events (and when sessions expire): the Pub/Sub
        # server wakes its streams. Called on the committing thread.
        self.listeners: list[Callable[[], None]] = []
        self._create_tables()

    def _create_tables(self) -> None:
        with self.store.lock:
            self.store.db.execute(
                "CREATE TABLE IF NOT EXISTS change_events (replay INTEGER PRIMARY KEY AUTOINCREMENT, "
                "entity TEXT NOT NULL, schema_id TEXT NOT NULL, payload BLOB NOT NULL, "
                "event_uuid TEXT NOT NULL, published_at REAL NOT NULL)"
            )
            self.store.db.execute(
                "CREATE INDEX IF NOT EXISTS change_events_published ON change_events (published_at)"
            )
            self.store.db.execute(
                "CREATE TABLE IF NOT EXISTS event_schemas (schema_id TEXT PRIMARY KEY, "
                "entity TEXT NOT NULL, schema_json TEXT NOT NULL)"
            )

    # --- selection (Setup > Change Data Capture) and custom channels ------------------------------
    def selected(self) -> list[str]:
        return list(self.store.meta_get("cdc_selected", CDC_OBJECTS))

    def select(self, sobject: str, enabled: bool) -> None:
        self._check_entity(sobject)
        names = set(self.selected())
        names = names | {sobject} if enabled else names - {sobject}
        self.store.meta_set("cdc_selected", [n for n in OBJECT_NAMES if n in names])

    def channels(self) -> dict[str, list[str]]:
        """Custom channels `/data/<Name>__chn` by name, with their member entities."""
        return dict(self.store.meta_get("cdc_channels", {}))

    def define_channel(self, name: str, entities: list[str]) -> None:
        if not name.endswith("__chn") or not name[:-5].replace("_", "").isalnum():
            raise ValueError(f"a custom channel's name is <Name>__chn, not {name!r}")
        for entity in entities:
            self._check_entity(entity)
        self.store.meta_set("cdc_channels", {**self.channels(), name: list(entities)})

    def publishing(self) -> set[str]:
        """The entities whose changes make events: selected, or a member of a custom channel."""
        members = {entity for entities in self.channels().values() for entity in entities}
        return set(self.selected()) | members

    @staticmethod
    def _check_entity(sobject: str) -> None:
        if sobject not in OBJECT_NAMES:
            raise ValueError(f"no object {sobject!r} in this org")

    # --- schemas ----------------------------------------------------------------------------------
    def schema_for(self, sobject: str) -> Schema:
        """The object's current schema (it follows describe: a new or hidden field changes it)."""
        specs = event_fields(self.store.visible_fields(sobject))
        shape = json.dumps(avro_schema(sobject, specs), separators=(",", ":"))
        digest = hashlib.sha256(shape.encode()).digest()[:16]
        schema_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if schema_id not in self._schemas:
            parsed = fastavro.parse_schema(json.loads(shape))
            names = ["ChangeEventHeader", *(spec.name for spec in specs)]
            self._schemas[schema_id] = Schema(schema_id, shape, names, specs, parsed)
            with self.store.lock:
                self.store.db.execute(
                    "INSERT OR IGNORE INTO event_schemas (schema_id, entity, schema_json) VALUES (?, ?, ?)",
                    (schema_id, sobject, shape),
                )
        return self._schemas[schema_id]

    def schema_json(self, schema_id: str) -> str | None:
        """Any schema an event of this org was ever written with."""
        row = self.store.db.execute(
            "SELECT schema_json FROM event_schemas WHERE schema_id = ?", (schema_id,)
        ).fetchone()
        return str(row[0]) if row else None

    # --- publishing -------------------------------------------------------------------------------
    def publish(self, changes: list[Change], origin: str, user: str) -> int:
        """Append the transaction's events to the log (inside the transaction); how many."""
        wanted = self.publishing()
        groups: dict[str, list[Change]] = {}
        for change in changes:
            if change.sobject in wanted:
                groups.setdefault(_merge_key(change), []).append(change)
        if not groups:
            return 0
        transaction_key = str(uuid.uuid4())
        commit_number = int(self.store.meta_get("cdc_commit_number", 0)) + 1
        self.store.meta_set("cdc_commit_number", commit_number)
        commit_ms = int(org_now().timestamp() * 1000)
        published = 0
        for sequence, group in enumerate(groups.values(), start=1):
            first = group[0]
            header = {
                "entityName": first.sobject,
                "recordIds": list(dict.fromkeys(c.record_id for c in group)),
                "changeType": first.change_type,
                "changeOrigin": origin,
                "transactionKey": transaction_key,
                "sequenceNumber": sequence,
                "commitTimestamp": commit_ms,
                "commitNumber": commit_number,
                "commitUser": user,
            }
            published += self._append(first.sobject, header, first.values, first.nulled)
        return published

    def publish_header_only(self, sobject: str, change_type: str, record_ids: list[str], user: str) -> None:
        """A GAP_* or GAP_OVERFLOW event (a fault): the header only (§5.1), in a commit of its own."""
        if change_type not in CHANGE_TYPES[4:]:
            raise ValueError(f"a gap event's changeType is one of {CHANGE_TYPES[4:]}, not {change_type!r}")
        self._check_entity(sobject)
        header = {
            "entityName": sobject,
            "recordIds": [] if change_type == "GAP_OVERFLOW" else list(record_ids),
            "changeType": change_type,
            "changeOrigin": "",
            "transactionKey": str(uuid.uuid4()),
            "sequenceNumber": 1,
            "commitTimestamp": int(org_now().timestamp() * 1000),
            "commitNumber": int(self.store.meta_get("cdc_commit_number", 0)) + 1,
            "commitUser": user,
        }
        with self.store.lock:
            self.store.meta_set("cdc_commit_number", header["commitNumber"])
            self._append(sobject, header, {}, [])
        self.notify()

    def _append(self, sobject: str, header: dict[str, Any], values: dict[str, Any], nulled: list[str]) -> int:
        if self.drop_next > 0:
            self.drop_next -= 1
            return 0
        schema = self.schema_for(sobject)
        carried = {spec.name: spec for spec in schema.specs}
        changed = [name for name in values if name in carried]
        is_update = header["changeType"] == "UPDATE"
        record: dict[str, Any] = {
            "ChangeEventHeader": {
                **header,
                "nulledFields": (
                    [changed_fields_bitmap(schema.field_names, [n for n in nulled if n in carried])]
                    if is_update and any(n in carried for n in nulled)
                    else []
                ),
                "diffFields": [],
                "changedFields": [changed_fields_bitmap(schema.field_names, changed)] if is_update else [],
            }
        }
        for name in changed:
            record[name] = _avro_value(carried[name].type, values[name])
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema.parsed, record)
        self.store.db.execute(
            "INSERT INTO change_events (entity, schema_id, payload, event_uuid, published_at) VALUES (?, ?, ?, ?, ?)",
            (sobject, schema.schema_id, out.getvalue(), str(uuid.uuid4()), time.time()),
        )
        return 1

    def notify(self) -> None:
        for listener in list(self.listeners):
            listener()

    # --- reading, retention -----------------------------------------------------------------------
    def latest(self) -> int:
        """The newest replay position handed out (0 before the first event)."""
        row = self.store.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'change_events'").fetchone()
        return int(row[0]) if row else 0

    def retention_seconds(self) -> float:
        return float(self.store.meta_get("cdc_retention_seconds", DEFAULT_RETENTION_SECONDS))

    def expire(self) -> int:
        """Drop events older than the retention; return the position up to which events are gone."""
        cutoff = time.time() - self.retention_seconds()
        with self.store.lock:
            row = self.store.db.execute(
                "SELECT MAX(replay) FROM change_events WHERE published_at < ?", (cutoff,)
            ).fetchone()
            if row[0] is not None:
                self.store.db.execute("DELETE FROM change_events WHERE replay <= ?", (row[0],))
                self.store.meta_set("cdc_expired_upto", int(row[0]))
        return int(self.store.meta_get("cdc_expired_upto", 0))

    def read(self, after: int, entities: set[str], limit: int) -> list[tuple[int, str, str, bytes]]:
        """Up to `limit` events after the position, of these entities: (replay, schema id, uuid, payload)."""
        marks = ",".join("?" * len(entities))
        rows = self.store.db.execute(
            f"SELECT replay, schema_id, event_uuid, payload FROM change_events WHERE replay > ? "
            f"AND entity IN ({marks}) ORDER BY replay LIMIT ?",
            (after, *sorted(entities), limit),
        )
        return [(int(r[0]), str(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    # --- the daily delivery allocation (DailyDeliveredPlatformEvents) -----------------------------
    def deliveries(self) -> tuple[int, int]:
        today = dt.date.today().isoformat()
        used = self.store.meta_get("cdc_deliveries", {}).get(today, 0)
        return int(used), int(self.store.meta_get("cdc_deliveries_max", DEFAULT_DELIVERIES_MAX))

    def count_deliveries(self, count: int) -> None:
        used, _ = self.deliveries()
        self.store.meta_set("cdc_deliveries", {dt.date.today().isoformat(): used + count})

    def set_deliveries(self, used: int | None = None, maximum: int | None = None) -> None:
        if used is not None:
            self.store.meta_set("cdc_deliveries", {dt.date.today().isoformat(): int(used)})
        if maximum is not None:
            self.store.meta_set("cdc_deliveries_max", int(maximum))


def _merge_key(change: Change) -> str:
    """Rows of one transaction that changed the same way share an event (§5): same object, change
    type and new values (the per-row audit stamps aside)."""
    same = {k: v for k, v in change.values.items() if k not in AUDIT_FIELDS}
    return json.dumps([change.sobject, change.change_type, same, change.nulled], sort_keys=True, default=str)
