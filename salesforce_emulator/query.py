"""Query execution: SOQL over the store with query locators (REST) and Bulk API 2.0 query jobs.

Pages are read by keyset when the order allows it (no ORDER BY, or ORDER BY SystemModstamp/Id in
one direction), so paging a million rows costs the same per page at the end as at the start;
other orders fall back to OFFSET.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import soql
from .schema import OBJECT_NAMES, FieldSpec
from .store import Store, table
from .timeutil import bulk_datetime

CURSOR_LIFETIME_SECONDS = 2 * 24 * 3600
MAX_BATCH = 2000
MIN_BATCH = 200
MAX_OPEN_CURSORS = 2000


@dataclass
class Selection:
    """One item of a SELECT list: a field, or a parent's field through a relationship."""

    spec: FieldSpec
    relationship: str | None = None  # "Account"
    target_object: str | None = None
    target_spec: FieldSpec | None = None

    @property
    def column_header(self) -> str:
        if self.relationship and self.target_spec:
            return f"{self.relationship}.{self.target_spec.name}"
        return self.spec.name


@dataclass
class PreparedQuery:
    sobject: str
    selections: list[Selection]
    where: str
    params: list[Any]
    order_sql: list[str]
    keyset_columns: list[str] | None  # columns for keyset paging, or None for OFFSET
    descending: bool
    limit: int | None
    total: int = 0
    text: str = ""
    query: soql.Query | None = None


@dataclass
class Cursor:
    prepared: PreparedQuery
    version: str
    batch_size: int
    created: float = field(default_factory=time.time)
    # offset -> the keyset position after that many rows, so a page can be fetched again.
    positions: dict[int, tuple[Any, ...] | None] = field(default_factory=dict)


class QueryEngine:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.cursors: dict[str, Cursor] = {}

    # --- preparation ------------------------------------------------------------------------------
    def prepare(self, text: str, *, include_deleted: bool, for_bulk: bool = False) -> PreparedQuery:
        query = soql.parse(text)
        sobject = next((name for name in OBJECT_NAMES if name.lower() == query.sobject.lower()), None)
        if sobject is None:
            raise soql.SoqlError(
                "INVALID_TYPE",
                f"\n{text}\n^\nERROR at Row:1:Column:1\nsObject type '{query.sobject}' is not supported. If you are "
                "attempting to use a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        fields = self.store.field_map(sobject)

        def resolve(name: str) -> str:
            spec = fields.get(name.lower())
            if spec is None or "." in name:
                raise soql.invalid_field(text, name, sobject)
            return spec.name

        selections = [self._selection(text, sobject, fields, name) for name in query.fields]
        if for_bulk:
            for selection in selections:
                if selection.spec.type in ("address", "location"):
                    raise soql.SoqlError("API_ERROR", "Selecting compound data not supported in Bulk Query")
        conditions = ["visible = 1"]
        params: list[Any] = []
        if not include_deleted:
            conditions.append("is_deleted = 0")
        if query.where is not None:
            for name in soql.referenced_fields(query.where):
                resolve(name)
            where, params = soql.where_sql(query.where, resolve)
            conditions.append(f"({where})")
        order_names = [(resolve(item.field), item) for item in query.order_by]
        keyset: list[str] | None = None
        directions = {item.descending for _, item in order_names}
        if (
            all(name in ("Id", "SystemModstamp") for name, _ in order_names)
            and len(directions) <= 1
            and not any(item.nulls_last is not None for _, item in order_names)
        ):
            keyset = [soql.column_sql(name) for name, _ in order_names]
            if "id" not in keyset:
                keyset.append("id")
        descending = bool(directions == {True})
        order_sql = []
        for name, item in order_names:
            column = soql.column_sql(name)
            nulls = "" if item.nulls_last is None else (" NULLS LAST" if item.nulls_last else " NULLS FIRST")
            order_sql.append(f"{column} {'DESC' if item.descending else 'ASC'}{nulls}")
        if "id" not in [soql.column_sql(name) for name, _ in order_names]:
            order_sql.append("id DESC" if descending else "id ASC")
        prepared = PreparedQuery(
            sobject=sobject,
            selections=selections,
            where=" AND ".join(conditions),
            params=params,
            order_sql=order_sql,
            keyset_columns=keyset,
            descending=descending,
            limit=query.limit,
            text=text,
            query=query,
        )
        count = self.store.db.execute(
            f"SELECT COUNT(*) FROM {table(sobject)} WHERE {prepared.where}", prepared.params
        ).fetchone()[0]
        prepared.total = min(count, query.limit) if query.limit is not None else count
        return prepared

    def _selection(self, text: str, sobject: str, fields: dict[str, FieldSpec], name: str) -> Selection:
        if "." not in name:
            spec = fields.get(name.lower())
            if spec is None:
                raise soql.invalid_field(text, name, sobject)
            return Selection(spec)
        relationship, _, target_field = name.partition(".")
        reference = next(
            (
                s
                for s in fields.values()
                if s.relationship_name and s.relationship_name.lower() == relationship.lower()
            ),
            None,
        )
        if reference is None or not reference.reference_to or reference.reference_to[0] not in OBJECT_NAMES:
            raise soql.SoqlError(
                "INVALID_FIELD",
                f"\n{text}\n^\nERROR at Row:1:Column:1\nDidn't understand relationship '{relationship}' in field path. "
                "If you are attempting to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the appropriate names.",
            )
        target_object = reference.reference_to[0]
        target_spec = self.store.field_map(target_object).get(target_field.lower())
        if target_spec is None or "." in target_field:
            raise soql.invalid_field(text, name, target_object)
        return Selection(reference, reference.relationship_name, target_object, target_spec)

    # --- reading pages ----------------------------------------------------------------------------
    def fetch(
        self, prepared: PreparedQuery, *, offset: int, position: tuple[Any, ...] | None, count: int
    ) -> list[tuple[Any, ...]]:
        """Rows (id, keyset values..., fields JSON) of one page."""
        if prepared.limit is not None:
            count = min(count, prepared.limit - offset)
        if count <= 0:
            return []
        key_columns = prepared.keyset_columns or []
        select = ", ".join(["id", *key_columns, "fields"])
        sql = f"SELECT {select} FROM {table(prepared.sobject)} WHERE {prepared.where}"
        params = list(prepared.params)
        if prepared.keyset_columns is not None:
            if position is not None:
                comparison = "<" if prepared.descending else ">"
                sql += f" AND ({', '.join(key_columns)}) {comparison} ({', '.join('?' for _ in key_columns)})"
                params.extend(position)
            sql += f" ORDER BY {', '.join(prepared.order_sql)} LIMIT ?"
            params.append(count)
        else:
            sql += f" ORDER BY {', '.join(prepared.order_sql)} LIMIT ? OFFSET ?"
            params.extend([count, offset])
        return list(self.store.db.execute(sql, params))

    def position_after(self, prepared: PreparedQuery, rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
        if prepared.keyset_columns is None or not rows:
            return None
        return tuple(rows[-1][1 : 1 + len(prepared.keyset_columns)])

    def records(
        self, prepared: PreparedQuery, rows: list[tuple[Any, ...]], version: str
    ) -> list[dict[str, Any]]:
        stored = [json.loads(row[-1]) for row in rows]
        parents = self._parents(prepared, stored)
        out = []
        for record in stored:
            rendered: dict[str, Any] = {
                "attributes": {
                    "type": prepared.sobject,
                    "url": f"/services/data/v{version}/sobjects/{prepared.sobject}/{record['Id']}",
                }
            }
            for selection in prepared.selections:
                if selection.relationship is None:
                    rendered[selection.spec.name] = record.get(selection.spec.name)
                    continue
                assert selection.target_spec is not None and selection.target_object is not None
                parent = parents.get((selection.target_object, str(record.get(selection.spec.name))))
                if parent is None:
                    rendered[selection.relationship] = None
                    continue
                nested = rendered.get(selection.relationship) or {
                    "attributes": {
                        "type": selection.target_object,
                        "url": f"/services/data/v{version}/sobjects/{selection.target_object}/{parent['Id']}",
                    }
                }
                nested[selection.target_spec.name] = parent.get(selection.target_spec.name)
                rendered[selection.relationship] = nested
            out.append(rendered)
        return out

    def _parents(
        self, prepared: PreparedQuery, stored: list[dict[str, Any]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        wanted: dict[str, set[str]] = {}
        for selection in prepared.selections:
            if selection.relationship and selection.target_object:
                ids = {r[selection.spec.name] for r in stored if r.get(selection.spec.name)}
                wanted.setdefault(selection.target_object, set()).update(ids)
        parents: dict[tuple[str, str], dict[str, Any]] = {}
        for target, ids in wanted.items():
            id_list = list(ids)
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for record_id, fields_json in self.store.db.execute(
                    f"SELECT id, fields FROM {table(target)} WHERE id IN ({marks}) AND visible = 1 AND is_deleted = 0",
                    chunk,
                ):
                    parents[(target, record_id)] = json.loads(fields_json)
        return parents

    # --- REST query and query locators ------------------------------------------------------------
    def start(self, text: str, *, include_deleted: bool, batch_size: int, version: str) -> dict[str, Any]:
        prepared = self.prepare(text, include_deleted=include_deleted)
        cursor = Cursor(prepared, version, batch_size, positions={0: None})
        locator = self._new_locator()
        self.cursors[locator] = cursor
        return self.page(locator, 0, version)

    def page(self, locator: str, offset: int, version: str) -> dict[str, Any]:
        cursor = self.cursors.get(locator)
        if (
            cursor is None
            or time.time() - cursor.created > CURSOR_LIFETIME_SECONDS
            or offset not in cursor.positions
        ):
            raise soql.SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
        prepared = cursor.prepared
        rows = self.fetch(prepared, offset=offset, position=cursor.positions[offset], count=cursor.batch_size)
        end = offset + len(rows)
        done = end >= prepared.total or not rows
        body: dict[str, Any] = {"totalSize": prepared.total, "done": done}
        if not done:
            cursor.positions[end] = self.position_after(prepared, rows)
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        elif offset == 0:
            # A one-page result needs no locator; later pages stay fetchable again until expiry.
            self.cursors.pop(locator, None)
        body["records"] = self.records(prepared, rows, version)
        return body

    def _new_locator(self) -> str:
        self._expire_cursors()
        return "01g" + secrets.token_hex(8)[:15]

    def _expire_cursors(self) -> None:
        now = time.time()
        for locator in [k for k, c in self.cursors.items() if now - c.created > CURSOR_LIFETIME_SECONDS]:
            del self.cursors[locator]
        # Keep memory bounded: the oldest open cursors go first (dicts keep insertion order).
        while len(self.cursors) >= MAX_OPEN_CURSORS:
            del self.cursors[next(iter(self.cursors))]

    # --- Bulk API 2.0 CSV pages -------------------------------------------------------------------
    def bulk_page(
        self, prepared: PreparedQuery, locator: str | None, max_records: int
    ) -> tuple[str, int, str]:
        """(csv text, number of records, next locator or "null")."""
        state = (
            json.loads(base64.urlsafe_b64decode(locator.encode()).decode())
            if locator
            else {"o": 0, "k": None}
        )
        position = tuple(state["k"]) if state.get("k") is not None else None
        rows = self.fetch(prepared, offset=state["o"], position=position, count=max_records)
        stored = [json.loads(row[-1]) for row in rows]
        parents = self._parents(prepared, stored)
        lines = [",".join(_csv_cell(s.column_header) for s in prepared.selections)]
        for record in stored:
            lines.append(
                ",".join(
                    _csv_cell(_csv_value(self._bulk_value(s, record, parents))) for s in prepared.selections
                )
            )
        end = state["o"] + len(rows)
        done = end >= prepared.total or len(rows) < max_records
        next_locator = "null"
        if not done:
            after = self.position_after(prepared, rows)
            next_locator = base64.urlsafe_b64encode(json.dumps({"o": end, "k": after}).encode()).decode()
        return "\n".join(lines) + "\n", len(rows), next_locator

    def _bulk_value(
        self, selection: Selection, record: dict[str, Any], parents: dict[tuple[str, str], dict[str, Any]]
    ) -> Any:
        if selection.relationship is None:
            value = record.get(selection.spec.name)
            return bulk_datetime(value) if selection.spec.type == "datetime" and value else value
        assert selection.target_object is not None and selection.target_spec is not None
        parent = parents.get((selection.target_object, str(record.get(selection.spec.name))))
        return parent.get(selection.target_spec.name) if parent else None


def _csv_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv_cell(value: str | None) -> str:
    """Bulk CSV quotes every value with `"` and leaves nulls as empty cells."""
    if value is None or value == "":
        return ""
    return '"' + value.replace('"', '""') + '"'
