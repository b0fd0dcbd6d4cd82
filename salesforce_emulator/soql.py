"""The SOQL subset of salesforce-api.md §6: parsing, and translation to SQLite over the store.

SELECT f1, Rel.Field, (SELECT ... FROM ChildRelationship ...) | COUNT() | COUNT(f) [alias]
FROM Obj [WHERE ...] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]
with AND / OR / NOT, parentheses, = != < <= > >= IN NOT IN LIKE, semi-joins
(`Id IN (SELECT OpportunityId FROM OpportunityContactRole ...)`), and string, number, boolean,
NULL, date, datetime and relative date (`TODAY`, `LAST_N_DAYS:30`, `THIS_QUARTER`...) literals.
Keywords are case-insensitive, and so are comparisons of text (see `fold`).

Where Salesforce is strict, so is this: AND and OR mixed without parentheses, a value of the wrong
type for its field (a quoted date, a datetime literal on a date field), a filter on a field that is
not filterable and a field selected twice are refused with Salesforce's error codes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from . import relative_dates
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
    "OFFSET",
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
  | (?P<relative>[A-Za-z_]+:\d+)
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
    kind: str  # string, number, boolean, null, date, datetime, relative
    value: Any
    # A string's text as written, escapes included (LIKE keeps `\%` and `\_` literal).
    raw: str = ""
    column: int = 0


@dataclass
class Comparison:
    field: str
    operator: str  # = != < <= > >= IN NOT IN LIKE NOT LIKE
    value: Literal | list[Literal] | Query  # a Query is a semi-join (IN) or anti-join (NOT IN)
    column: int = 0


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
class Aggregate:
    """`COUNT()` (field None: only totalSize is returned) or `COUNT(field) [alias]`."""

    function: str
    field: str | None
    alias: str | None = None


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Expr | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    text: str = ""
    offset: int = 0
    # Parent-to-child subqueries of the SELECT list; their FROM is a child relationship name.
    subqueries: list[Query] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    # Every SELECT item in order, with the column it starts at (for duplicate-field errors).
    select_columns: list[tuple[str, int]] = field(default_factory=list)

    @property
    def count_only(self) -> bool:
        return any(a.field is None for a in self.aggregates)


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
        query = self.query()
        extra = self.peek()
        if extra is not None:
            raise _malformed(self.text, extra.column, f"unexpected token: '{extra.text}'")
        return query

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        query = Query(fields=[], sobject="", text=self.text)
        self.select_item(query)
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            self.select_item(query)
        self.expect_keyword("FROM")
        query.sobject = self.name()
        if query.count_only and (query.fields or query.subqueries or len(query.aggregates) > 1):
            raise _malformed(self.text, 0, "COUNT() must be the only item of the SELECT list")
        if query.aggregates and (query.fields or query.subqueries):
            # Without GROUP BY (not in this subset), other fields cannot sit beside an aggregate.
            raise _malformed(
                self.text, 0, f"Field must be grouped or aggregated: {(query.fields or ['Id'])[0]}"
            )
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
            query.limit = self.whole_number()
        if self.at_keyword("OFFSET"):
            self.take()
            query.offset = self.whole_number()
        return query

    def whole_number(self) -> int:
        token = self.take()
        if token.kind != "number" or "." in token.text or token.text.startswith("-"):
            raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")
        return int(token.text)

    def select_item(self, query: Query) -> None:
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            subquery = self.query()
            if subquery.subqueries or subquery.aggregates:
                raise _malformed(
                    self.text, token.column, "nested subqueries and aggregates are not supported"
                )
            closing = self.take()
            if closing.text != ")":
                raise _malformed(self.text, closing.column, f"unexpected token: '{closing.text}'")
            query.subqueries.append(subquery)
            query.select_columns.append((f"({subquery.sobject})", token.column))
            return
        if token is not None and token.kind == "name" and token.upper == "COUNT":
            after = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
            if after is not None and after.text == "(":
                self.take()
                self.take()
                inner = self.take()
                if inner.text == ")":
                    query.aggregates.append(Aggregate("COUNT", None))
                    return
                if inner.kind != "name" or inner.upper in KEYWORDS:
                    raise _malformed(self.text, inner.column, f"unexpected token: '{inner.text}'")
                closing = self.take()
                if closing.text != ")":
                    raise _malformed(self.text, closing.column, f"unexpected token: '{closing.text}'")
                alias = None
                following = self.peek()
                if following is not None and following.kind == "name" and following.upper not in KEYWORDS:
                    alias = self.take().text
                query.aggregates.append(Aggregate("COUNT", inner.text, alias))
                return
        column = token.column if token is not None else len(self.text)
        name = self.name()
        query.fields.append(name)
        query.select_columns.append((name, column))

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
        # SOQL has no precedence between AND and OR: mixing them needs parentheses, and the org
        # refuses `a AND b OR c` at the second operator.
        operands = [self.unary()]
        operator = None
        while self.at_keyword("AND", "OR"):
            token = self.take()
            if operator is not None and token.upper != operator:
                raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")
            operator = token.upper
            operands.append(self.unary())
        return operands[0] if operator is None else BoolOp(operator, operands)

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
        start = self.peek()
        column = start.column if start is not None else len(self.text)
        field_name = self.name()
        token = self.take()
        if token.kind == "op":
            operator = "!=" if token.text == "<>" else token.text
            return Comparison(field_name, operator, self.literal(), column)
        if token.upper == "NOT" and self.at_keyword("IN", "LIKE"):
            word = self.take().upper
            value: Literal | list[Literal] | Query = self.literal_list() if word == "IN" else self.literal()
            return Comparison(field_name, f"NOT {word}", value, column)
        if token.upper == "IN":
            return Comparison(field_name, "IN", self.literal_list(), column)
        if token.upper == "LIKE":
            return Comparison(field_name, "LIKE", self.literal(), column)
        raise _malformed(self.text, token.column, f"unexpected token: '{token.text}'")

    def literal_list(self) -> list[Literal] | Query:
        opening = self.take()
        if opening.text != "(":
            raise _malformed(self.text, opening.column, f"unexpected token: '{opening.text}'")
        if self.at_keyword("SELECT"):
            subquery = self.query()
            if subquery.subqueries or subquery.aggregates or len(subquery.fields) != 1:
                raise _malformed(self.text, opening.column, "a semi-join selects exactly one id field")
            closing = self.take()
            if closing.text != ")":
                raise _malformed(self.text, closing.column, f"unexpected token: '{closing.text}'")
            return subquery
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
        at = token.column
        if token.kind == "string":
            return Literal("string", re.sub(r"\\(.)", r"\1", token.text[1:-1]), token.text[1:-1], at)
        if token.kind == "number":
            return Literal("number", float(token.text) if "." in token.text else int(token.text), column=at)
        if token.kind == "date":
            return Literal("date", token.text, column=at)
        if token.kind == "datetime":
            return Literal("datetime", format_datetime(parse_datetime_literal(token.text)), column=at)
        if token.kind == "name" and token.upper in ("TRUE", "FALSE"):
            return Literal("boolean", token.upper == "TRUE", column=at)
        if token.kind == "name" and token.upper == "NULL":
            return Literal("null", None, column=at)
        if token.kind in ("name", "relative"):
            name, _, number = token.upper.partition(":")
            if relative_dates.is_literal(name, number):
                return Literal("relative", (name, int(number) if number else None), token.text, at)
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
