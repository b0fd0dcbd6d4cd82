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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import soql
from .schema import OBJECT_NAMES, FieldSpec, address_value, child_relationship
from .soql_filters import ID_TYPES, TEXT_TYPES, FilterTranslator, ParentPath
from .store import Store, table
from .timeutil import bulk_datetime

CURSOR_LIFETIME_SECONDS = 2 * 24 * 3600
MAX_BATCH = 2000
MIN_BATCH = 200
MAX_OPEN_CURSORS = 2000
MAX_OFFSET = 2000  # SOQL's documented OFFSET maximum


def own_field_name(name: str, sobject: str) -> str:
    """SOQL lets a field carry its own object's name (`Contact.LastName` in a query on Contact);
    django-salesforce writes every field that way."""
    prefix, dot, rest = name.partition(".")
    return rest if dot and prefix.lower() == sobject.lower() else name


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
    offset: int = 0  # the query's own OFFSET
    children: list[ChildSelection] = field(default_factory=list)
    # COUNT() / COUNT(field): the query returns one aggregate row (or only totalSize).
    aggregates: list[tuple[soql.Aggregate, FieldSpec | None]] = field(default_factory=list)


@dataclass
class ChildSelection:
    """A parent-to-child subquery: `(SELECT ... FROM OpportunityContactRoles)` on Opportunity."""

    relationship: str  # the name as the query wrote it; the key in each parent record
    parent_field: str  # the child's lookup to the parent (OpportunityId)
    prepared: PreparedQuery


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
        sobject = self._sobject(text, query.sobject)
        if for_bulk:
            self._refuse_for_bulk(query)
        prepared = self._compile(text, query, sobject, include_deleted=include_deleted)
        if for_bulk:
            for selection in prepared.selections:
                if selection.spec.type in ("address", "location"):
                    raise soql.SoqlError("API_ERROR", "Selecting compound data not supported in Bulk Query")
        count = self.store.db.execute(
            f"SELECT COUNT(*) FROM {table(sobject)} WHERE {prepared.where}", prepared.params
        ).fetchone()[0]
        count = max(count - prepared.offset, 0)
        prepared.total = min(count, query.limit) if query.limit is not None else count
        return prepared

    @staticmethod
    def _refuse_for_bulk(query: soql.Query) -> None:
        # Bulk API 2.0 limits (salesforce-api.md §2.8): no aggregates, OFFSET, subqueries or ORDER BY.
        if query.aggregates:
            raise soql.SoqlError("API_ERROR", "Aggregate queries are not supported in Bulk Query")
        if query.subqueries:
            raise soql.SoqlError("API_ERROR", "Parent-to-child subqueries are not supported in Bulk Query")
        if query.offset:
            raise soql.SoqlError("API_ERROR", "OFFSET is not supported in Bulk Query")
        if query.order_by:
            # The Bulk API 2.0 Developer Guide lists ORDER BY among the clauses its queries do not
            # support ("Understanding Bulk API 2.0 Query", SOQL Considerations) and says it turns
            # PK chunking off, so big jobs time out ("Troubleshooting Query Timeouts"). Neither
            # page nor salesforce-api.md (section 2.8) gives the error an org answers with: the
            # error code and shape are those of the refusals above, the words are ours.
            raise soql.SoqlError(
                "API_ERROR",
                "ORDER BY is not supported in Bulk API 2.0 queries (it disables PK chunking); "
                "query without it and order the results yourself",
            )

    def _sobject(self, text: str, name: str) -> str:
        sobject = next((known for known in OBJECT_NAMES if known.lower() == name.lower()), None)
        if sobject is None:
            raise soql.SoqlError(
                "INVALID_TYPE",
                f"\n{text}\n^\nERROR at Row:1:Column:1\nsObject type '{name}' is not supported. If you are "
                "attempting to use a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        return sobject

    def _resolver(self, text: str, sobject: str) -> Callable[[str], FieldSpec]:
        fields = self.store.field_map(sobject)

        def resolve(name: str) -> FieldSpec:
            own = own_field_name(name, sobject)
            spec = fields.get(own.lower())
            if spec is None or "." in own:
                raise soql.invalid_field(text, name, sobject)
            return spec

        return resolve

    def _compile(
        self, text: str, query: soql.Query, sobject: str, *, include_deleted: bool, child: bool = False
    ) -> PreparedQuery:
        """The query's SQL, without running it (a subquery is compiled for each page)."""
        fields = self.store.field_map(sobject)
        resolve = self._resolver(text, sobject)
        self._refuse_duplicates(text, query, sobject)
        if query.offset > MAX_OFFSET:
            raise soql.SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        selections = [self._selection(text, sobject, fields, name) for name in query.fields]
        children = [
            self._child(text, sobject, sub, include_deleted=include_deleted) for sub in query.subqueries
        ]
        aggregates = [
            (aggregate, resolve(aggregate.field) if aggregate.field else None)
            for aggregate in query.aggregates
        ]
        conditions = ["visible = 1"]
        params: list[Any] = []
        if not include_deleted:
            conditions.append("is_deleted = 0")
        if query.where is not None:
            translator = FilterTranslator(
                text,
                resolve,
                lambda sub, spec: self._semi_join(text, sub, spec, nested=child),
                lambda name: self._parent_path(text, sobject, fields, name),
            )
            where, params = translator.sql(query.where)
            conditions.append(f"({where})")
        order_specs = [(resolve(item.field), item) for item in query.order_by]
        for spec, item in order_specs:
            if not spec.sortable:
                column = text.find(item.field)
                raise soql.SoqlError(
                    "INVALID_FIELD",
                    f"\n{text}\n{' ' * max(column, 0)}^\nERROR at Row:1:Column:{max(column, 0) + 1}\n"
                    f"field '{spec.name}' can not be sorted in a query call",
                )
        order_names = [(spec.name, item) for spec, item in order_specs]
        keyset: list[str] | None = None
        directions = {item.descending for _, item in order_names}
        if (
            all(name in ("Id", "SystemModstamp") for name, _ in order_names)
            and len(directions) <= 1
            and not any(item.nulls_last is not None for _, item in order_names)
            and not query.offset
        ):
            keyset = [soql.column_sql(name) for name, _ in order_names]
            if "id" not in keyset:
                keyset.append("id")
        descending = bool(directions == {True})
        order_sql = []
        for spec, item in order_specs:
            sort_key = soql.column_sql(spec.name)
            if spec.type in TEXT_TYPES:
                sort_key = f"sf_fold({sort_key})"  # text sorts case-insensitively, as it compares
            nulls = "" if item.nulls_last is None else (" NULLS LAST" if item.nulls_last else " NULLS FIRST")
            order_sql.append(f"{sort_key} {'DESC' if item.descending else 'ASC'}{nulls}")
        if "id" not in [soql.column_sql(name) for name, _ in order_names]:
            order_sql.append("id DESC" if descending else "id ASC")
        return PreparedQuery(
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
            offset=query.offset,
            children=children,
            aggregates=aggregates,
        )

    def _parent_path(
        self, text: str, sobject: str, fields: dict[str, FieldSpec], name: str
    ) -> ParentPath | None:
        """A WHERE field through one lookup (`Opportunity.Name` on OpportunityContactRole), or None."""
        own = own_field_name(name, sobject)
        if "." not in own:
            return None
        selection = self._selection(text, sobject, fields, own)
        assert selection.target_object is not None and selection.target_spec is not None
        return ParentPath(
            soql.column_sql(selection.spec.name),
            table(selection.target_object),
            self._resolver(text, selection.target_object),
            selection.target_spec.name,
        )

    @staticmethod
    def _refuse_duplicates(text: str, query: soql.Query, sobject: str) -> None:
        # The org compares names case-insensitively ("duplicate field selected: Name"); the error
        # code is not documented, the message and caret are.
        seen: set[str] = set()
        for written, column in query.select_columns:
            name = own_field_name(written, sobject)
            if name.lower() in seen:
                raise soql.SoqlError(
                    "MALFORMED_QUERY",
                    f"\n{text}\n{' ' * column}^\nERROR at Row:1:Column:{column + 1}\n"
                    f"duplicate field selected: {name.rpartition('.')[2]}",
                )
            seen.add(name.lower())

    def _child(self, text: str, parent: str, sub: soql.Query, *, include_deleted: bool) -> ChildSelection:
        found = child_relationship(parent, sub.sobject)
        if found is None:
            raise soql.SoqlError(
                "INVALID_TYPE",
                f"\n{text}\n^\nERROR at Row:1:Column:1\nDidn't understand relationship '{sub.sobject}' in FROM "
                "part of query call. If you are attempting to use a custom relationship, be sure to append the "
                "'__r' after the custom relationship name. Please reference your WSDL or the describe call for "
                "the appropriate names.",
            )
        child_object, parent_field = found
        prepared = self._compile(text, sub, child_object, include_deleted=include_deleted, child=True)
        return ChildSelection(sub.sobject, parent_field, prepared)

    def _semi_join(
        self, text: str, sub: soql.Query, outer: FieldSpec, *, nested: bool
    ) -> tuple[str, list[Any]]:
        """`Id IN (SELECT OpportunityId FROM OpportunityContactRole ...)`: the ids the subquery selects."""
        if nested:
            raise soql.SoqlError("MALFORMED_QUERY", "Nesting of semi join sub-selects is not supported")
        if sub.order_by or sub.limit is not None or sub.offset:
            raise soql.SoqlError(
                "MALFORMED_QUERY", "ORDER BY, LIMIT and OFFSET are not allowed in a semi join sub-select"
            )
        inner = self._sobject(text, sub.sobject)
        prepared = self._compile(text, sub, inner, include_deleted=False, child=True)
        [selection] = prepared.selections
        if selection.relationship is not None or selection.spec.type not in ID_TYPES:
            raise soql.SoqlError(
                "INVALID_FIELD",
                f"\n{text}\n^\nERROR at Row:1:Column:1\nThe selected field '{selection.spec.name}' in the "
                f"subquery and the left operand field '{outer.name}' in the where expression must point to the "
                "same object type",
            )
        return (
            f"SELECT {soql.column_sql(selection.spec.name)} FROM {table(inner)} WHERE {prepared.where}",
            prepared.params,
        )

    def _selection(self, text: str, sobject: str, fields: dict[str, FieldSpec], name: str) -> Selection:
        name = own_field_name(name, sobject)
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
            params.extend([count, prepared.offset + offset])
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
        children = [self._children(child, stored, version) for child in prepared.children]
        out = []
        for record in stored:
            rendered: dict[str, Any] = {
                "attributes": {
                    "type": prepared.sobject,
                    "url": f"/services/data/v{version}/sobjects/{prepared.sobject}/{record['Id']}",
                }
            }
            for selection in prepared.selections:
                if selection.relationship is None and selection.spec.type == "address":
                    rendered[selection.spec.name] = address_value(selection.spec, record)
                    continue
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
            for child, by_parent in zip(prepared.children, children, strict=True):
                nested_records = by_parent.get(record["Id"])
                # No children: null, as salesforce-api.md §2.1 records it.
                rendered[child.relationship] = (
                    {"totalSize": len(nested_records), "done": True, "records": nested_records}
                    if nested_records
                    else None
                )
            out.append(rendered)
        return out

    def _children(
        self, child: ChildSelection, parents: list[dict[str, Any]], version: str
    ) -> dict[str, list[dict[str, Any]]]:
        """The subquery's records for each parent id, in the subquery's order and within its LIMIT."""
        prepared = child.prepared
        parent_column = soql.column_sql(child.parent_field)
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        ids = [record["Id"] for record in parents]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self.store.db.execute(
                f"SELECT {parent_column}, id, fields FROM {table(prepared.sobject)} "
                f"WHERE {prepared.where} AND {parent_column} IN ({marks}) ORDER BY {', '.join(prepared.order_sql)}",
                [*prepared.params, *chunk],
            ):
                grouped.setdefault(row[0], []).append(row[1:])
        result = {}
        for parent_id, rows in grouped.items():
            end = prepared.offset + prepared.limit if prepared.limit is not None else None
            result[parent_id] = self.records(prepared, rows[prepared.offset : end], version)
        return result

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
        if prepared.aggregates:
            return self._aggregate(prepared)
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

    def _aggregate(self, prepared: PreparedQuery) -> dict[str, Any]:
        """COUNT() answers with totalSize alone; COUNT(field) with one AggregateResult row whose
        columns are the aliases, or expr0, expr1... (counting the rows where the field is set)."""
        if prepared.query is not None and prepared.query.count_only:
            return {"totalSize": prepared.total, "done": True, "records": []}
        row: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
        for index, (aggregate, spec) in enumerate(prepared.aggregates):
            assert spec is not None
            column = soql.column_sql(spec.name)
            [count] = self.store.db.execute(
                f"SELECT COUNT({column}) FROM {table(prepared.sobject)} WHERE {prepared.where}",
                prepared.params,
            ).fetchone()
            row[aggregate.alias or f"expr{index}"] = count
        return {"totalSize": 1, "done": True, "records": [row]}

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
