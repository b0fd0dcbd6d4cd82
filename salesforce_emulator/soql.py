"""The SOQL subset of salesforce-api.md §6: parsing, and translation to SQLite over the store.

SELECT f1, Rel.Field FROM Obj [WHERE ...] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n]
with AND / OR / NOT, parentheses, = != < <= > >= IN NOT IN LIKE, and string, number, boolean,
NULL, date and datetime literals. Keywords are case-insensitive.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from .timeutil import format_datetime

KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "LIMIT",
    "NULLS",
    "FIRST",
    "LAST",
    "NULL",
    "TRUE",
    "FALSE",
}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)


class SoqlError(Exception):
    """A query the org refuses; `error_code` is Salesforce's (MALFORMED_QUERY, INVALID_FIELD...)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass
class Token:
    kind: str
    text: str
    column: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass
class Literal:
    kind: str  # string, number, boolean, null, date, datetime
    value: Any


@dataclass
class Comparison:
    field: str
    operator: str  # = != < <= > >= IN NOT IN LIKE NOT LIKE
    value: Literal | list[Literal]


@dataclass
class BoolOp:
    operator: str  # AND, OR
    operands: list[Expr]


@dataclass
class Negation:
    operand: Expr


Expr = Comparison | BoolOp | Negation


@dataclass
class OrderItem:
    field: str
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Expr | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    text: str = ""


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise _malformed(
                text, position, f"unexpected token: '{text[position : position + 10].split()[0]}'"
            )
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


def _malformed(text: str, column: int, message: str) -> SoqlError:
    # The real org answers with the query, a caret under the problem and the row/column.
    return SoqlError(
        "MALFORMED_QUERY",
        f"\n{text}\n{' ' * column}^\nERROR at Row:1:Column:{column + 1}\n{message}",
    )


def invalid_field(query_text: str, field_name: str, sobject: str) -> SoqlError:
    column = max(query_text.find(field_name), 0)
    return SoqlError(
        "INVALID_FIELD",
        f"\n{query_text}\n{' ' * column}^\nERROR at Row:1:Column:{column + 1}\n"
        f"No such column '{field_name}' on entity '{sobject}'. If you are attempting to use a custom field, "
        "be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe "
        "call for the appropriate names.",
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _malformed(self.text, len(self.text), "unexpected token: <EOF>")
        self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.upper in words

    def expect_keyword(self, word: str) -> None:
        token = self.take()
        if token.kind != "name" or token.upper != word:
            raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")

    def name(self) -> str:
        token = self.take()
        if token.kind != "name" or token.upper in KEYWORDS:
            raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")
        return token.text

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        fields = [self.name()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            fields.append(self.name())
        self.expect_keyword("FROM")
        query = Query(fields=fields, sobject=self.name(), text=self.text)
        if self.at_keyword("WHERE"):
            self.take()
            query.where = self.expression()
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            query.order_by.append(self.order_item())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                query.order_by.append(self.order_item())
        if self.at_keyword("LIMIT"):
            self.take()
            token = self.take()
            if token.kind != "number" or "." in token.text or token.text.startswith("-"):
                raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")
            query.limit = int(token.text)
        extra = self.peek()
        if extra is not None:
            raise _malformed(self.text, extra.column, f"unexpected token: '{extra.text}'")
        return query

    def order_item(self) -> OrderItem:
        item = OrderItem(self.name())
        if self.at_keyword("ASC", "DESC"):
            item.descending = self.take().upper == "DESC"
        if self.at_keyword("NULLS"):
            self.take()
            token = self.take()
            if token.upper not in ("FIRST", "LAST"):
                raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")
            item.nulls_last = token.upper == "LAST"
        return item

    def expression(self) -> Expr:
        operands = [self.conjunction()]
        while self.at_keyword("OR"):
            self.take()
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else BoolOp("OR", operands)

    def conjunction(self) -> Expr:
        operands = [self.unary()]
        while self.at_keyword("AND"):
            self.take()
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else BoolOp("AND", operands)

    def unary(self) -> Expr:
        if self.at_keyword("NOT"):
            self.take()
            return Negation(self.unary())
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.expression()
            closing = self.take()
            if closing.text != ")":
                raise _malformed(self.text, closing.column, f"unexpected token: '{closing.text}'")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        field_name = self.name()
        token = self.take()
        if token.kind == "op":
            operator = "!=" if token.text == "<>" else token.text
            return Comparison(field_name, operator, self.literal())
        if token.upper == "NOT" and self.at_keyword("IN", "LIKE"):
            word = self.take().upper
            return Comparison(
                field_name, f"NOT {word}", self.literal_list() if word == "IN" else self.literal()
            )
        if token.upper == "IN":
            return Comparison(field_name, "IN", self.literal_list())
        if token.upper == "LIKE":
            return Comparison(field_name, "LIKE", self.literal())
        raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")

    def literal_list(self) -> list[Literal]:
        opening = self.take()
        if opening.text != "(":
            raise _malformed(self.text, opening.column, f"unexpected token: '{opening.text}'")
        values = [self.literal()]
        while True:
            token = self.take()
            if token.text == ")":
                return values
            if token.text != ",":
                raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")
            values.append(self.literal())

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            return Literal("string", re.sub(r"\\(.)", r"\1", token.text[1:-1]))
        if token.kind == "number":
            return Literal("number", float(token.text) if "." in token.text else int(token.text))
        if token.kind == "date":
            return Literal("date", token.text)
        if token.kind == "datetime":
            return Literal("datetime", format_datetime(parse_datetime_literal(token.text)))
        if token.kind == "name" and token.upper in ("TRUE", "FALSE"):
            return Literal("boolean", token.upper == "TRUE")
        if token.kind == "name" and token.upper == "NULL":
            return Literal("null", None)
        raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")


def parse_datetime_literal(text: str) -> dt.datetime:
    normalized = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", normalized):
        normalized = normalized[:-2] + ":" + normalized[-2:]
    return dt.datetime.fromisoformat(normalized).astimezone(dt.UTC)


def parse(text: str) -> Query:
    return _Parser(text.strip()).parse()


# --- Translation to SQLite -------------------------------------------------------------------------

COLUMN_FIELDS = {"Id": "id", "SystemModstamp": "system_modstamp", "IsDeleted": "is_deleted"}


def column_sql(field_name: str) -> str:
    """The SQL for a field of a stored record; names were checked against describe already."""
    if field_name in COLUMN_FIELDS:
        return COLUMN_FIELDS[field_name]
    return f"json_extract(fields, '$.{field_name}')"


def _value_param(literal: Literal) -> Any:
    if literal.kind == "boolean":
        return 1 if literal.value else 0
    return literal.value


def where_sql(expr: Expr, resolve: Any) -> tuple[str, list[Any]]:
    """SQL and parameters for a WHERE expression; `resolve` maps a SOQL name to its describe name."""
    if isinstance(expr, BoolOp):
        parts, params = [], []
        for operand in expr.operands:
            sql, operand_params = where_sql(operand, resolve)
            parts.append(f"({sql})")
            params.extend(operand_params)
        return f" {expr.operator} ".join(parts), params
    if isinstance(expr, Negation):
        sql, params = where_sql(expr.operand, resolve)
        return f"NOT ({sql})", params
    column = column_sql(resolve(expr.field))
    if expr.operator in ("IN", "NOT IN"):
        assert isinstance(expr.value, list)
        values = [_value_param(v) for v in expr.value]
        marks = ", ".join("?" for _ in values)
        if expr.operator == "IN":
            return f"{column} IN ({marks})", values
        return f"({column} IS NULL OR {column} NOT IN ({marks}))", values
    assert isinstance(expr.value, Literal)
    if expr.value.kind == "null":
        if expr.operator == "=":
            return f"{column} IS NULL", []
        if expr.operator == "!=":
            return f"{column} IS NOT NULL", []
        return "0", []
    value = _value_param(expr.value)
    if expr.operator == "LIKE":
        return f"{column} LIKE ?", [value]
    if expr.operator == "NOT LIKE":
        return f"({column} IS NULL OR {column} NOT LIKE ?)", [value]
    if expr.operator == "!=":
        # In SOQL a null field is "not equal" to any value.
        return f"({column} IS NULL OR {column} != ?)", [value]
    return f"{column} {expr.operator} ?", [value]


def referenced_fields(expr: Expr | None) -> list[str]:
    if expr is None:
        return []
    if isinstance(expr, BoolOp):
        return [name for operand in expr.operands for name in referenced_fields(operand)]
    if isinstance(expr, Negation):
        return referenced_fields(expr.operand)
    return [expr.field]


def modstamp_bounds(expr: Expr | None) -> tuple[str | None, str | None]:
    """The window a query asks for on SystemModstamp (lower, upper), from top-level ANDs."""
    lower = upper = None
    comparisons: list[Expr] = []
    if isinstance(expr, BoolOp) and expr.operator == "AND":
        comparisons = list(expr.operands)
    elif expr is not None:
        comparisons = [expr]
    for item in comparisons:
        if (
            isinstance(item, Comparison)
            and item.field.lower() == "systemmodstamp"
            and isinstance(item.value, Literal)
        ):
            if item.operator in (">", ">="):
                lower = item.value.value
            elif item.operator in ("<", "<="):
                upper = item.value.value
    return lower, upper
