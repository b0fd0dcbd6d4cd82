"""The smart-list operators, each declared once (contract §4).

An operator is one `Operator` entry of `DECLARED`: its label, the field types that offer it, the
shape of its value and how it becomes a query. Everything else reads the entry: the registry
indexes it (`OPERATORS`, `OPERATORS_BY_TYPE`), the catalog and the builder list it, validation
checks a value by its shape (each item as a value of the field's type) and evaluation calls its
query. Adding an operator is adding an entry here, or `registry.register_operator` with one.

Every query is NULL-safe: a negative operator matches an empty value too (an opportunity without
a region "is not EMEA"). Relative dates and time frames are computed in the subscription's time
zone (`clock.py`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from django.db.models import DecimalField, JSONField, Q, TextField, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Concat, StrIndex
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IExact,
    In,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
    Lookup,
)

from .clock import Clock, day_bounds, next_day, shift, time_frame

if TYPE_CHECKING:
    from .registry import FieldType

# Every comparison of numbers is as NUMERIC(30, 10): validation keeps values within it.
NUMBER: DecimalField[Decimal, Decimal] = DecimalField(max_digits=30, decimal_places=10)

# What the value of an operator looks like: none, one value, several (OR-ed), [low, high], a
# relative amount of time ("30 days"), or a named time frame ("this_quarter").
ValueKind = Literal["none", "one", "many", "pair", "relative", "time_frame"]

NUMBERS: tuple[FieldType, ...] = ("number", "currency", "percent")
DATES: tuple[FieldType, ...] = ("date", "datetime")
# The types whose values can be missing: all but boolean (empty there is false).
VALUED: tuple[FieldType, ...] = ("text", "picklist", *NUMBERS, *DATES)


@dataclass(frozen=True)
class Operand:
    """What an operator is applied to: a value expression of a field type, read at a moment."""

    expr: Any
    kind: FieldType
    clock: Clock
    # A multi-select picklist, whose `is` matches when its set holds any of the values (and
    # `is not` when it holds none), as Salesforce's INCLUDES and Marketo's multi-select filters do.
    multiple: bool = False

    def empty(self) -> Q:
        """No value: NULL (a missing key of `custom_fields` too), or "" for text."""
        if self.kind in ("text", "picklist"):
            return Q(IsNull(self.expr, True)) | Q(Exact(self.expr, ""))
        return Q(IsNull(self.expr, True))

    def within(self, low: Any, high: Any) -> Q:
        """From `low` (included) to `high` (excluded)."""
        return Q(GreaterThanOrEqual(self.expr, low)) & Q(LessThan(self.expr, high))

    def bounds(self, day: Any) -> tuple[Any, Any]:
        """The first moment of `day` and the first after it, in the field's own terms."""
        return day_bounds(day, self.kind, self.clock)

    @property
    def present(self) -> Any:
        """Today for a date field, now for a date-time one."""
        return self.clock.today if self.kind == "date" else self.clock.now

    def ago(self, span: tuple[int, str]) -> Any:
        """The present moved back by a relative value, (amount, unit)."""
        return self._moved(-span[0], span[1])

    def ahead(self, span: tuple[int, str]) -> Any:
        return self._moved(span[0], span[1])

    def _moved(self, amount: int, unit: str) -> Any:
        # A date-time moves on the subscription's wall clock (`clock.shift`).
        if self.kind == "date":
            return shift(self.clock.today, amount, unit)
        return shift(self.clock.now, amount, unit, self.clock.tz)

    def spanning(self, first: Any, last: Any) -> Q:
        """From `first` to `last`, both included (a date field: up to the day after `last`)."""
        if self.kind == "date":
            return self.within(first, next_day(last))
        return Q(GreaterThanOrEqual(self.expr, first)) & Q(LessThanOrEqual(self.expr, last))


# How an operator becomes a query: the operand and the value validation converted.
Query = Callable[[Operand, Any], Q]


@dataclass(frozen=True)
class Operator:
    """A smart-list operator: everything the catalog, validation and evaluation know of it."""

    key: str
    label: str
    # Validation checks a value by this shape, each of its items as a value of the field's type;
    # the builder draws the input from it.
    value: ValueKind
    # The field types that offer it, each listing its operators in the order they are declared.
    types: tuple[FieldType, ...]
    query: Query


def either(conditions: list[Q]) -> Q:
    """OR of one or more conditions (validation guarantees at least one value)."""
    return functools.reduce(operator.or_, conditions)


def _number(value: Any) -> Any:
    """A number as a typed SQL value. SQLite would otherwise receive a Decimal as text, and text
    never equals a number computed by a subquery (an aggregate has no column affinity)."""
    return Cast(Value(str(Decimal(str(value)))), NUMBER)


def _holds(expr: Any, value: str) -> Q:
    """A multi-select picklist's "A;B" holds `value` as one of its items: `;A;B;` contains
    `;value;` (INSTR on SQLite, STRPOS on PostgreSQL: exact and case-sensitive as `is` on a
    picklist is, no LIKE wildcards to escape). Validation refuses values containing `;`."""
    items = Concat(Value(";"), expr, Value(";"), output_field=TextField())
    return Q(GreaterThan(StrIndex(items, Value(f";{value};")), 0))


def _is(x: Operand, values: list[Any]) -> Q:
    if x.kind in DATES:
        return either([x.within(*x.bounds(day)) for day in values])
    if x.kind in NUMBERS:
        return either([Q(Exact(x.expr, _number(v))) for v in values])
    if x.kind == "picklist" and x.multiple:
        return either([_holds(x.expr, v) for v in values])
    if x.kind == "picklist":
        return Q(In(x.expr, list(values)))
    return either([Q(IExact(x.expr, v)) for v in values])


def _not(positive: Query) -> Query:
    """The opposite of another operator, which an empty value meets too."""

    def query(x: Operand, value: Any) -> Q:
        return ~positive(x, value) | Q(IsNull(x.expr, True))

    return query


def _text(lookup: type[Lookup[Any]]) -> Query:
    return lambda x, value: Q(lookup(x.expr, value))


def _compared(lookup: type[Lookup[Any]]) -> Query:
    return lambda x, value: Q(lookup(x.expr, _number(value)))


# Which moment of a day a date comparison takes: its first, or the first after it.
FIRST, NEXT = 0, 1


def _dated(lookup: type[Lookup[Any]], moment: int) -> Query:
    return lambda x, day: Q(lookup(x.expr, x.bounds(day)[moment]))


def _between(x: Operand, value: tuple[Any, Any]) -> Q:
    low, high = value
    if x.kind in DATES:
        return x.within(x.bounds(low)[FIRST], x.bounds(high)[NEXT])
    return Q(GreaterThanOrEqual(x.expr, _number(low))) & Q(LessThanOrEqual(x.expr, _number(high)))


def _in_time_frame(x: Operand, name: str) -> Q:
    first, after_last = time_frame(name, x.clock.today)
    return x.within(x.bounds(first)[FIRST], x.bounds(after_last)[FIRST])


def _truth(x: Operand) -> tuple[Q, Q]:
    """(true, missing) of a boolean: a JSON key needs its own lookups (true as JSON)."""
    if isinstance(x.expr, KeyTransform):
        exact, is_null = x.expr.get_lookup("exact"), x.expr.get_lookup("isnull")
        assert exact is not None and is_null is not None  # JSONField registers both
        return Q(exact(x.expr, Value(True, output_field=JSONField()))), Q(is_null(x.expr, True))
    return Q(Exact(x.expr, True)), Q(IsNull(x.expr, True))


def _is_false(x: Operand, _value: None) -> Q:
    true, missing = _truth(x)
    return ~true | missing


_contains, _starts_with = _text(IContains), _text(IStartsWith)

# In the order each type lists its operators in the catalog (contract §3).
DECLARED: tuple[Operator, ...] = (
    Operator("is", "is", "many", VALUED, _is),
    Operator("is_not", "is not", "many", VALUED, _not(_is)),
    Operator("contains", "contains", "one", ("text",), _contains),
    Operator("not_contains", "not contains", "one", ("text",), _not(_contains)),
    Operator("starts_with", "starts with", "one", ("text",), _starts_with),
    Operator("not_starts_with", "not starts with", "one", ("text",), _not(_starts_with)),
    Operator("greater_than", "greater than", "one", NUMBERS, _compared(GreaterThan)),
    Operator("less_than", "less than", "one", NUMBERS, _compared(LessThan)),
    Operator("at_least", "at least", "one", NUMBERS, _compared(GreaterThanOrEqual)),
    Operator("at_most", "at most", "one", NUMBERS, _compared(LessThanOrEqual)),
    Operator("before", "before", "one", DATES, _dated(LessThan, FIRST)),
    Operator("after", "after", "one", DATES, _dated(GreaterThanOrEqual, NEXT)),
    Operator("on_or_before", "on or before", "one", DATES, _dated(LessThan, NEXT)),
    Operator("on_or_after", "on or after", "one", DATES, _dated(GreaterThanOrEqual, FIRST)),
    Operator("between", "between", "pair", (*NUMBERS, *DATES), _between),
    # Rolling windows ending (or starting) today for a date, now for a date-time, ends included.
    Operator("in_past", "in past", "relative", DATES, lambda x, span: x.spanning(x.ago(span), x.present)),
    Operator("in_past_before", "in past before", "relative", DATES, lambda x, span: Q(LessThan(x.expr, x.ago(span)))),
    Operator("in_future", "in future", "relative", DATES, lambda x, span: x.spanning(x.present, x.ahead(span))),
    Operator("in_future_after", "in future after", "relative", DATES, lambda x, span: Q(GreaterThan(x.expr, x.ahead(span)))),
    Operator("in_time_frame", "in time frame", "time_frame", DATES, _in_time_frame),
    Operator("is_empty", "is empty", "none", VALUED, lambda x, _v: x.empty()),
    Operator("is_not_empty", "is not empty", "none", VALUED, lambda x, _v: ~x.empty()),
    Operator("is_true", "is true", "none", ("boolean",), lambda x, _v: _truth(x)[0]),
    Operator("is_false", "is false", "none", ("boolean",), _is_false),
)  # fmt: skip
