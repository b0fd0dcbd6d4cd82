"""A SOQL WHERE clause as SQLite over the store, with Salesforce's typing rules.

- Text (`string`, `picklist`, `email`...) compares case-insensitively, Unicode included: both
  sides go through `sf_fold` (str.casefold), which the store registers on its connection.
- Ids and references accept 15-character ids and 18-character ids in any letter case; both are
  turned into the canonical 18-character id, so the primary key index still serves `Id IN (...)`.
- A value must have its field's type: a quoted date, a datetime literal on a date field, a number
  on a text field are refused with INVALID_FIELD, as the org refuses them.
- Relative date literals compare against their range of days (relative_dates.py).
- `IN (SELECT ...)` / `NOT IN (SELECT ...)` are semi-joins and anti-joins on another object.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import relative_dates, soql
from .ids import canonical_id
from .schema import FieldSpec
from .timeutil import format_datetime, org_now

TEXT_TYPES = {"string", "picklist", "multipicklist", "combobox", "email", "phone", "textarea", "url"}
ID_TYPES = {"id", "reference"}
NUMBER_TYPES = {"int", "double", "currency", "percent"}
# The type names Salesforce's "must be of type X" messages use.
_TYPE_WORDS = {"int": "integer", "double": "double", "currency": "double", "percent": "double"}


@dataclass
class ParentPath:
    """A field reached through a lookup (`Account.Name` from Contact)."""

    lookup_column: str  # SQL of the lookup on the queried object
    table: str  # the parent's table
    resolve: Callable[[str], FieldSpec]  # the parent's fields
    field: str  # the parent's field name, as written


def fold(value: Any) -> Any:
    """Salesforce's case-insensitive text comparison, for SQLite (`sf_fold`)."""
    return value.casefold() if isinstance(value, str) else value


def like_pattern(raw: str) -> str:
    """A SOQL LIKE pattern (escapes as written) as a SQLite pattern with ESCAPE '\\'."""
    out, index = [], 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            following = raw[index + 1]
            out.append("\\" + following if following in "%_\\" else following)
            index += 2
            continue
        out.append(char)
        index += 1
    return fold("".join(out))


class FilterTranslator:
    """Translates one query's WHERE; `resolve` gives a field's describe (raising INVALID_FIELD),
    `semi_join` gives the SQL of a subquery's id column."""

    def __init__(
        self,
        text: str,
        resolve: Callable[[str], FieldSpec],
        semi_join: Callable[[soql.Query, FieldSpec], tuple[str, list[Any]]],
        parent: Callable[[str], ParentPath | None] | None = None,
    ) -> None:
        self.text = text
        self.resolve = resolve
        self.semi_join = semi_join
        self.parent = parent
        self.today = org_now().date()

    def sql(self, expr: soql.Expr) -> tuple[str, list[Any]]:
        if isinstance(expr, soql.BoolOp):
            parts, params = [], []
            for operand in expr.operands:
                sql, operand_params = self.sql(operand)
                parts.append(f"({sql})")
                params.extend(operand_params)
            return f" {expr.operator} ".join(parts), params
        if isinstance(expr, soql.Negation):
            sql, params = self.sql(expr.operand)
            return f"NOT ({sql})", params
        return self.comparison(expr)

    # --- one comparison ---------------------------------------------------------------------------
    def comparison(self, expr: soql.Comparison) -> tuple[str, list[Any]]:
        path = self.parent(expr.field) if self.parent is not None else None
        if path is not None:
            return self._through_parent(expr, path)
        spec = self.resolve(expr.field)
        if not spec.filterable:
            raise self._error(expr.column, f"field '{spec.name}' can not be filtered in a query call")
        column = soql.column_sql(spec.name)
        if isinstance(expr.value, soql.Query):
            if spec.type not in ID_TYPES:
                raise self._error(
                    expr.column, f"Semi join sub-selects are only allowed for id fields, not '{spec.name}'"
                )
            sub_sql, sub_params = self.semi_join(expr.value, spec)
            if expr.operator == "IN":
                return f"{column} IN ({sub_sql})", sub_params
            return f"({column} IS NULL OR {column} NOT IN ({sub_sql}))", sub_params
        values = expr.value if isinstance(expr.value, list) else [expr.value]
        for literal in values:
            self._check_type(spec, literal)
        if any(literal.kind == "relative" for literal in values):
            return self._relative(spec, column, expr.operator, values)
        if expr.operator in ("IN", "NOT IN"):
            return self._membership(spec, column, expr.operator, values)
        [literal] = values
        if literal.kind == "null":
            if expr.operator == "=":
                return f"{column} IS NULL", []
            if expr.operator == "!=":
                return f"{column} IS NOT NULL", []
            return "0", []
        if expr.operator in ("LIKE", "NOT LIKE"):
            if spec.type not in TEXT_TYPES | ID_TYPES or literal.kind != "string":
                raise self._error(literal.column, f"invalid operator on field '{spec.name}': LIKE")
            sql = f"sf_fold({column}) LIKE ? ESCAPE '\\'"
            if expr.operator == "LIKE":
                return sql, [like_pattern(literal.raw)]
            return f"({column} IS NULL OR NOT ({sql}))", [like_pattern(literal.raw)]
        left, value = self._operand(spec, column, literal)
        if expr.operator == "!=":
            # In SOQL a null field is "not equal" to any value.
            return f"({column} IS NULL OR {left} != ?)", [value]
        return f"{left} {expr.operator} ?", [value]

    def _through_parent(self, expr: soql.Comparison, path: ParentPath) -> tuple[str, list[Any]]:
        """`Account.Name = 'Acme'` on Contact: the lookup points at a parent that matches. A record
        without a parent has a null parent field, so it matches what a null value would match."""
        inner = FilterTranslator(self.text, path.resolve, self.semi_join)
        sql, params = inner.comparison(dataclasses.replace(expr, field=path.field))
        clause = f"{path.lookup_column} IN (SELECT id FROM {path.table} WHERE visible = 1 AND is_deleted = 0 AND ({sql}))"
        null_matches = expr.operator in ("!=", "NOT IN", "NOT LIKE") or (
            isinstance(expr.value, soql.Literal) and expr.value.kind == "null" and expr.operator == "="
        )
        return (f"({path.lookup_column} IS NULL OR {clause})" if null_matches else clause), params

    def _operand(self, spec: FieldSpec, column: str, literal: soql.Literal) -> tuple[str, Any]:
        """The column as compared (folded for text) and the literal's parameter."""
        if spec.type in TEXT_TYPES:
            return f"sf_fold({column})", fold(literal.value)
        if spec.type in ID_TYPES:
            normalized = canonical_id(str(literal.value))
            if normalized is None:
                raise soql.SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {literal.value}")
            return column, normalized
        if literal.kind == "boolean":
            return column, 1 if literal.value else 0
        return column, literal.value

    def _membership(
        self, spec: FieldSpec, column: str, operator: str, values: list[soql.Literal]
    ) -> tuple[str, list[Any]]:
        non_null = [literal for literal in values if literal.kind != "null"]
        has_null = len(non_null) != len(values)
        left = column
        params: list[Any] = []
        for literal in non_null:
            left, value = self._operand(spec, column, literal)
            params.append(value)
        marks = ", ".join("?" for _ in params)
        if operator == "IN":
            parts = [f"{left} IN ({marks})"] if params else []
            if has_null:
                parts.append(f"{column} IS NULL")
            return " OR ".join(parts) or "0", params
        parts = [f"{left} NOT IN ({marks})"] if params else ["1"]
        if has_null:
            return f"{column} IS NOT NULL AND {parts[0]}", params
        return f"({column} IS NULL OR {parts[0]})", params

    def _relative(
        self, spec: FieldSpec, column: str, operator: str, values: list[soql.Literal]
    ) -> tuple[str, list[Any]]:
        ranges = [self._bounds(spec, literal) for literal in values]
        if operator in ("IN", "NOT IN", "=", "!="):
            inside = " OR ".join(f"({column} >= ? AND {column} < ?)" for _ in ranges)
            params = [bound for pair in ranges for bound in pair]
            if operator in ("IN", "="):
                return inside, params
            return f"({column} IS NULL OR NOT ({inside}))", params
        [(start, end)] = ranges
        if operator == "<":
            return f"{column} < ?", [start]
        if operator == "<=":
            return f"{column} < ?", [end]
        if operator == ">":
            return f"{column} >= ?", [end]
        return f"{column} >= ?", [start]  # >=

    def _bounds(self, spec: FieldSpec, literal: soql.Literal) -> tuple[str, str]:
        name, n = literal.value
        start, end = relative_dates.date_range(name, n, self.today)
        if spec.type == "date":
            return start.isoformat(), end.isoformat()
        return tuple(  # type: ignore[return-value]
            format_datetime(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)) for day in (start, end)
        )

    # --- typing -----------------------------------------------------------------------------------
    def _check_type(self, spec: FieldSpec, literal: soql.Literal) -> None:
        if literal.kind == "null":
            return
        allowed = {
            "date": {"date", "relative"},
            "datetime": {"datetime", "relative"},
            "boolean": {"boolean"},
        }.get(spec.type)
        if allowed is None and spec.type in NUMBER_TYPES:
            allowed = {"number"}
        if allowed is None:
            allowed = {"string"}
        if literal.kind in allowed:
            return
        word = {"date": "date", "datetime": "dateTime", "boolean": "boolean"}.get(spec.type)
        word = word or _TYPE_WORDS.get(spec.type) or ("id" if spec.type in ID_TYPES else "string")
        quoting = (
            "should be enclosed in quotes" if allowed == {"string"} else "should not be enclosed in quotes"
        )
        raise self._error(
            literal.column,
            f"value of filter criterion for field '{spec.name}' must be of type {word} and {quoting}",
        )

    def _error(self, column: int, message: str) -> soql.SoqlError:
        return soql.SoqlError(
            "INVALID_FIELD", f"\n{self.text}\n{' ' * column}^\nERROR at Row:1:Column:{column + 1}\n{message}"
        )
