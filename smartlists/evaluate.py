"""A smart-list definition evaluated to a `QuerySet[Person]` (product.md §3, style.md §4).

1. The universe is every person except merge losers; people deleted in Salesforce are members
   unless a person_field filter excludes them.
2. Each opportunity filter is one `Exists` over live contact roles joined to live opportunities,
   so all of its constraints hit the same opportunity and the same role. Without constraints, or
   with only Closed is false / Won is true, it reads the sync-maintained totals instead.
3. Activity filters are `Exists` (or, for the Not-variants, `~Exists`) over the person's
   activities whose opportunity is live; Role / IsPrimary are the activity's own; Min. Number of
   Times compares a count instead.
4. Aggregates compare a subquery sum or count over the person's distinct live opportunities (the
   selector the Opportunity Info tab's totals use), optionally with opportunity constraints.
5. Filters combine with ALL, ANY or an advanced rule parsed by `logic.py`.

Relative dates and time frames are computed in the subscription's time zone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, connections, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateField,
    DateTimeField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import (
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Range,
)

from opportunities.models import (
    Activity,
    ContactRole,
    Opportunity,
    PersonOpportunityTotals,
    TotalsCoverage,
)
from opportunities.selectors import person_opportunity_total
from opportunities.totals import ACTIVITY_TIMES, picklist_key, totals_column
from oppsync_site.pagination import plan_estimate
from people.models import Person

from .clock import Clock, day_bounds, shift, time_frame
from .logic import Rule
from .operators import NUMBER, Operand
from .operators import either as _either
from .registry import OPERATORS, Catalog, ConstraintField, FieldType
from .validation import CheckedDefinition, CheckedFilter, Constraint, check_definition


class InactiveFieldsError(Exception):
    """The list names fields that are no longer synced; evaluating it needs the reader's consent."""

    def __init__(self, warnings: list[str], locations: dict[str, str]) -> None:
        super().__init__(" ".join(warnings))
        self.warnings = warnings
        self.locations = locations


class SmartListCycleError(Exception):
    """Member of Smart List would make a list contain itself."""


class JSONScalarText(Func):
    """The text of a JSON scalar stored in a JSONField (`"Closed Won"` -> `Closed Won`)."""

    output_field = TextField()
    template = "json_extract(%(expressions)s, '$')"

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s #>> '{}')", **extra_context)


# --- values and conditions -------------------------------------------------------------------------
# What PostgreSQL can cast without raising: a number (any size: cast to unconstrained NUMERIC),
# a date of year 0001-9999 with a real month and day, an ISO date-time built on one. The regular
# expressions are data (parameters), never spliced into the SQL.
_NUMBER_TEXT = r"^\s*[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]{1,4})?\s*$"
_DATE_PART = r"(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_DATE_TEXT = rf"^{_DATE_PART}$"
_DATETIME_TEXT = (
    rf"^{_DATE_PART}[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{{1,6}})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$"
)


class CheckedCast(Func):
    """Text cast to a field type, or NULL where the text is not of that type.

    A custom field (or an activity's value) can hold text of another type: a value synced before
    the field's type changed in Salesforce. PostgreSQL stops the whole query at the first such
    cast (`invalid input syntax for type numeric: "abc"`), so one record would make every read
    of a list a 500; there the text is checked first (a regular expression, then for dates that
    the day exists in its month). SQLite never raises on a cast: plain CAST there."""

    def __init__(self, text: Any, kind: FieldType) -> None:
        self.kind = kind
        fields: dict[str, Any] = {"date": DateField(), "datetime": DateTimeField(), "boolean": BooleanField()}
        super().__init__(text, output_field=fields.get(kind, NUMBER))

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        return compiler.compile(Cast(self.source_expressions[0], self.output_field))

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        text, params = compiler.compile(self.source_expressions[0])
        t, p = f"({text})", list(params)
        if self.kind == "boolean":
            return f"CASE WHEN lower({t}) IN ('true', 'false') THEN {t}::boolean END", p * 2
        if self.kind not in ("date", "datetime"):
            return f"CASE WHEN {t} ~ %s THEN {t}::numeric END", [*p, _NUMBER_TEXT, *p]
        pattern = _DATE_TEXT if self.kind == "date" else _DATETIME_TEXT
        cast = "date" if self.kind == "date" else "timestamptz"
        # The first of the month plus (day - 1) days lands in the next month when the day does
        # not exist (30 February); make_date never raises for a year, month and day so checked.
        day = f"substr({t}, 9, 2)::int"
        first = f"make_date(substr({t}, 1, 4)::int, substr({t}, 6, 2)::int, 1)"
        sql = (
            f"CASE WHEN {t} ~ %s THEN CASE WHEN extract(day from {first} + ({day} - 1)) = {day} "
            f"THEN {t}::{cast} END END"
        )
        return sql, [*p, pattern, *p, *p, *p, *p, *p]


def _cast(text: Any, kind: FieldType) -> Any:
    if kind in ("number", "currency", "percent", "date", "datetime", "boolean"):
        return CheckedCast(text, kind)
    return text


def value_expression(cf: ConstraintField, prefix: str = "") -> Any:
    """Where a field's value is: a column, or a key of `custom_fields` cast to its type.

    JSON keys are never spliced into ORM lookups (`Region__c` holds `__`): KeyTextTransform takes
    the key as data.
    """
    if cf.column:
        return F(f"{prefix}{cf.column}")
    if cf.type == "boolean":
        # Compared as JSON (true), which both databases store and compare the same way.
        return KeyTransform(cf.custom_key, f"{prefix}custom_fields")
    return _cast(KeyTextTransform(cf.custom_key, f"{prefix}custom_fields"), cf.type)


def condition(
    expr: Any, kind: FieldType, operator: str, value: Any, clock: Clock, *, multiple: bool = False
) -> Q:
    """One operator over one value expression: the query its entry declares (`operators.py`).
    `multiple`: a multi-select picklist ("A;B")."""
    entry = OPERATORS.get(operator)
    if entry is None or kind not in entry.types:
        raise ValueError(f"operator {operator} does not apply to {kind} fields")  # validation prevents it
    return entry.query(Operand(expr, kind, clock, multiple), value)


# --- filters ---------------------------------------------------------------------------------------
def _constraint_q(constraint: Constraint, *, opportunity_prefix: str, clock: Clock) -> Q:
    cf = constraint.field
    if cf.source == "opportunity":
        expr = value_expression(cf, opportunity_prefix)
    elif cf.field in ("new_value", "previous_value"):
        expr = _cast(JSONScalarText(cf.field), cf.type)
    else:  # Role / IsPrimary (the role's or the activity's own), date_of_activity: columns
        expr = F(cf.column)
    return condition(expr, cf.type, constraint.operator, constraint.value, clock, multiple=cf.multiple)


def on_live_opportunity(item: CheckedFilter) -> Q:
    """A role or activity whose opportunity is live.

    A filter with opportunity constraints joins the opportunity for them anyway. Without any,
    "live" is "not among the deleted opportunities": a few thousand ids hashed once, instead of
    a join that reads every opportunity (a million) to learn one boolean, so an activity filter
    reads its covering index and nothing else (README, "Smart lists at a big org"). NOT IN is
    safe: the subquery yields primary keys, never NULL.
    """
    if any(constraint.field.source == "opportunity" for constraint in item.constraints):
        return Q(opportunity__is_deleted=False)
    deleted = Opportunity.objects.filter(is_deleted=True).values("pk")
    return Q(opportunity__isnull=False) & ~Q(opportunity_id__in=deleted)


def role_witnesses(item: CheckedFilter, person: Any, clock: Clock) -> QuerySet[ContactRole]:
    """Has Opportunity: the person's live roles on live opportunities that meet every constraint
    (everyone's when `person` is None)."""
    roles = ContactRole.objects.filter(on_live_opportunity(item), is_deleted=False)
    roles = roles.filter(person__isnull=False) if person is None else roles.filter(person=person)
    for constraint in item.constraints:
        roles = roles.filter(_constraint_q(constraint, opportunity_prefix="opportunity__", clock=clock))
    return roles


def _min_times(item: CheckedFilter) -> int:
    return next((int(c.value) for c in item.constraints if c.field.field == "min_number_of_times"), 1)


def activity_witnesses(item: CheckedFilter, person: Any, clock: Clock) -> QuerySet[Activity]:
    return activity_matches(item, clock).filter(on_live_opportunity(item), person=person)


def activity_matches(item: CheckedFilter, clock: Clock) -> QuerySet[Activity]:
    """Everyone's activities of the filter's type (and changed field) that meet its constraints;
    trigger campaigns ask this of the activities a cycle has just recorded."""
    activities = Activity.objects.filter(activity_type=item.spec.activity_type)
    if item.field is not None:
        activities = activities.filter(field=item.field.field)
    for constraint in item.constraints:
        if constraint.field.field == "min_number_of_times":
            continue
        activities = activities.filter(
            _constraint_q(constraint, opportunity_prefix="opportunity__", clock=clock)
        )
    return activities


def _zero_matches(op: str, value: Any) -> bool:
    """Whether a total of zero (a person without opportunities) satisfies the operator."""
    if op in ("is_empty", "is_not_empty"):
        return op == "is_not_empty"  # a total is never empty; no opportunity gives 0
    zero = Decimal(0)
    if op in ("is", "is_not"):
        among = any(Decimal(str(v)) == zero for v in value)
        return among if op == "is" else not among
    if op == "between":
        return Decimal(str(value[0])) <= zero <= Decimal(str(value[1]))
    limit = Decimal(str(value))
    compare: dict[str, Callable[[Decimal, Decimal], bool]] = {
        "greater_than": operator.gt,
        "less_than": operator.lt,
        "at_least": operator.ge,
        "at_most": operator.le,
    }
    return compare[op](zero, limit)


# The one constraint that selects exactly the opportunities of a totals variant
# (`opportunities.totals.VARIANTS`): Closed is false the open ones, Won is true the won ones.
VARIANT_CONSTRAINTS: dict[tuple[str, str], str] = {
    ("IsClosed", "is_false"): "open",
    ("IsWon", "is_true"): "won",
}


# The one constraint that selects exactly the opportunities a variant leaves out: every live
# opportunity is open or closed and won or not (the columns are never NULL), so the total over
# the closed ones is the whole total less the open ones', over the not-won less the won ones'.
COMPLEMENT_CONSTRAINTS: dict[tuple[str, str], str] = {
    ("IsClosed", "is_true"): "open",
    ("IsWon", "is_false"): "won",
}


def stored_columns(total: str, constraints: list[Constraint]) -> tuple[str, str | None] | None:
    """The totals columns holding `total` over the opportunities the constraints select, as
    (column, column subtracted from it or None): all of them without a constraint, a variant's
    for its constraint, all less a variant's for its complement; None for any other subset."""
    if not constraints:
        return totals_column(total), None
    if len(constraints) == 1:
        key = (constraints[0].field.field, constraints[0].operator)
        variant = VARIANT_CONSTRAINTS.get(key)
        if variant is not None:
            return totals_column(total, variant), None
        left_out = COMPLEMENT_CONSTRAINTS.get(key)
        if left_out is not None:
            return totals_column(total), totals_column(total, left_out)
    return None


def stored_total_q(item: CheckedFilter, clock: Clock) -> Q | None:
    """An aggregate filter as a comparison of the sync-maintained totals column that holds it
    (`PersonOpportunityTotals`, joined one-to-one): an indexed column instead of aggregating
    every person's roles, or the difference of two columns for a complement. None when its
    constraints select a subset no column holds, or for an operator the comparisons below do
    not know; then the total is computed. Values keep the column's type so its index stays
    usable."""
    columns = stored_columns(item.spec.aggregate, item.constraints)
    if columns is None:
        return None
    column, subtracted = columns
    if subtracted is not None and item.spec.aggregate != "number_of_optys" and connection.vendor == "sqlite":
        # SQLite keeps money as floating point: 0.8 less 0.7 is not 0.1 there. A count is exact.
        return None
    op, value = item.operator, item.value
    if op in ("is_empty", "is_not_empty"):
        return Q(pk__in=[]) if op == "is_empty" else ~Q(pk__in=[])  # a total is never empty
    numbers: list[Decimal] | list[int] = [
        Decimal(str(v)) for v in (value if isinstance(value, (list, tuple)) else [value])
    ]
    if item.spec.aggregate == "number_of_optys":
        # A count is whole (validation). Compared through an expression, SQLite finds an integer
        # unequal to a Decimal parameter (sent as text), and PostgreSQL keeps the column's index.
        numbers = [int(n) for n in numbers]
    found = _compared(_stored_value(column, subtracted), op, numbers)
    if found is None:
        return None
    # The row's presence is stated: a comparison with no row is unknown, which NOT keeps so.
    matched = Q(opportunity_totals__isnull=False) & found
    if op == "is_not":
        matched = Q(opportunity_totals__isnull=False) & ~found
    if _zero_matches(op, value):  # people without a row have all-zero totals
        matched |= Q(opportunity_totals__isnull=True)
    return matched


def _stored_value(column: str, subtracted: str | None) -> Any:
    """A totals column of the person's row, less another one for a complement."""
    value = F(f"opportunity_totals__{column}")
    return value if subtracted is None else value - F(f"opportunity_totals__{subtracted}")


_COMPARISONS: dict[str, Any] = {
    "greater_than": GreaterThan,
    "less_than": LessThan,
    "at_least": GreaterThanOrEqual,
    "at_most": LessThanOrEqual,
}


def _compared(value: Any, op: str, numbers: list[Decimal] | list[int]) -> Q | None:
    """The stored value meets the operator (`is_not` as its `is`, negated by the caller);
    None for an operator these do not know."""
    if op in _COMPARISONS:
        return Q(_COMPARISONS[op](value, numbers[0]))
    if op == "between":
        return Q(Range(value, (numbers[0], numbers[1])))
    if op in ("is", "is_not"):
        return Q(In(value, numbers))
    return None


def aggregate_expression(item: CheckedFilter, person: Any, clock: Clock) -> Any:
    extra = Q()
    for constraint in item.constraints:
        extra &= _constraint_q(constraint, opportunity_prefix="opportunity__", clock=clock)
    return person_opportunity_total(item.spec.aggregate, person, condition=extra)


def _activity_count(item: CheckedFilter, clock: Clock) -> Any:
    counted = (
        activity_witnesses(item, OuterRef("pk"), clock).order_by().values("person").annotate(n=Count("pk"))
    )
    return Coalesce(Subquery(counted.values("n")[:1]), Value(0))


def stored_presence_q(item: CheckedFilter) -> Q | None:
    """Has Opportunity with no constraint, or with only Closed is false / true or Won is true /
    false, as a count of those opportunities above zero in the sync-maintained totals (`PersonOpportunityTotals`).
    The totals count exactly what the filter asks for (live roles with a person on live
    opportunities), so one indexed column answers instead of collecting every live role's person:
    at a million people, "has an opportunity" counts in a fraction of the time (README, "Smart
    lists at a big org"). None for any other constraint."""
    columns = stored_columns("number_of_optys", item.constraints)
    if columns is None:
        return None
    # The row's presence is stated, so that NOT (the Not-variant) holds for people without one.
    return Q(opportunity_totals__isnull=False) & Q(GreaterThan(_stored_value(*columns), 0))


@dataclass
class StoredFacts:
    """What every totals row holds beyond the totals, as `TotalsCoverage` says: the picklist
    fields whose values it holds, and whether its latest Added / Removed times are current."""

    picklist_fields: frozenset[str] = frozenset()
    activity_times: bool = False
    _later_times: dict[str, bool] = dataclasses.field(default_factory=dict)

    def any_time_after(self, lookup: str, moment: dt.datetime) -> bool:
        """Whether some row's time (`last_added_at__gt`, say) lies after `moment`: one indexed
        lookup per evaluation (counting and paging ask the same)."""
        key = f"{lookup}@{moment.isoformat()}"
        if key not in self._later_times:
            self._later_times[key] = PersonOpportunityTotals.objects.filter(**{lookup: moment}).exists()
        return self._later_times[key]

    @classmethod
    def load(cls) -> StoredFacts:
        coverage = TotalsCoverage.objects.filter(pk=1).first()
        if coverage is None:
            return cls()
        return cls(frozenset(coverage.picklist_fields), coverage.activity_times)


def stored_picklist_q(item: CheckedFilter, facts: StoredFacts) -> Q | None:
    """Has Opportunity with one constraint, "a covered picklist field is one of these values", as
    a key lookup in the person's totals row: any of those values among their live opportunities.
    One row per person instead of joining every live role to its opportunity (README, "Smart
    lists at a big org"). None for anything else, which the roles answer."""
    if item.spec.key != "has_opportunity" or len(item.constraints) != 1:
        return None
    constraint = item.constraints[0]
    cf = constraint.field
    if (
        cf.source != "opportunity"
        or cf.type != "picklist"
        or cf.multiple  # its rows would hold "A;B" whole; the roles answer "holds A"
        or constraint.operator != "is"
        or cf.field not in facts.picklist_fields
        or not all(isinstance(v, str) and v for v in constraint.value)
    ):
        return None
    keys = [picklist_key(cf.field, value) for value in constraint.value]
    return Q(opportunity_totals__picklist_values__has_any_keys=keys)


def _activity_window(item: CheckedFilter, clock: Clock) -> tuple[Any, Any, bool] | None:
    """(first moment, end, end included) of an activity filter's only constraint, a date window
    with a start; (None, None, False) with no constraint; None when the filter asks more."""
    dates = [c for c in item.constraints if c.field.field == "date_of_activity"]
    others = [c for c in item.constraints if c.field.field != "date_of_activity"]
    if len(dates) > 1 or any(c.field.field != "min_number_of_times" or int(c.value) != 1 for c in others):
        return None
    if not dates:
        return None, None, False
    operator_name, value = dates[0].operator, dates[0].value
    if operator_name == "in_past":
        amount, unit = value
        return shift(clock.now, -amount, unit, clock.tz), clock.now, True
    if operator_name == "after":
        return day_bounds(value, "datetime", clock)[1], None, False
    if operator_name == "on_or_after":
        return day_bounds(value, "datetime", clock)[0], None, False
    if operator_name == "between":
        return day_bounds(value[0], "datetime", clock)[0], day_bounds(value[1], "datetime", clock)[1], False
    if operator_name == "in_time_frame":
        first, after_last = time_frame(value, clock.today)
        return day_bounds(first, "datetime", clock)[0], day_bounds(after_last, "datetime", clock)[0], False
    return None  # before / on_or_before / is: no start


def stored_activity_q(item: CheckedFilter, clock: Clock, facts: StoredFacts) -> Q | None:
    """Was Added to / Removed from Opportunity in a window that has a start and has not ended,
    as the person's latest such activity (kept in the totals row) falling in it: one row per
    person instead of a set of hundreds of thousands of people. None for anything else.

    A latest activity after the window's end (a clock ahead, a future date) says nothing about
    the window: for those people the activities answer. That arm is left out when no row has such
    a time (one indexed lookup), which is nearly always: a correlated subquery, even one never
    run, keeps PostgreSQL from counting in parallel (0.8 s becomes 2 s at a million people). A
    window that has ended is left to the activities: most people's latest time lies after it."""
    column = next((c for c, kind in ACTIVITY_TIMES.items() if kind == item.spec.activity_type), None)
    window = _activity_window(item, clock)
    if not facts.activity_times or column is None or window is None:
        return None
    start, end, end_included = window
    if end is not None and end < clock.now:
        return None
    path = f"opportunity_totals__{column}"
    matched = Q(**{f"{path}__gte": start}) if start is not None else Q(**{f"{path}__isnull": False})
    if end is not None:
        matched &= Q(**{f"{path}__{'lte' if end_included else 'lt'}": end})
        after_end = f"{column}__{'gt' if end_included else 'gte'}"
        if facts.any_time_after(after_end, end):
            later = Q(**{f"opportunity_totals__{after_end}": end})
            matched |= later & Q(Exists(activity_witnesses(item, OuterRef("pk"), clock)))
    return matched


def filter_q(
    item: CheckedFilter,
    clock: Clock,
    resolve_list: Callable[[int], Evaluation | None],
    facts: StoredFacts | None = None,
) -> Q:
    """One filter as a condition on the person (the totals rows answer what `facts` covers)."""
    spec = item.spec
    stored = stored_q(item, clock, facts)
    if stored is not None:
        return ~stored if spec.negated else stored
    if spec.kind == "opportunity":
        if connection.vendor == "sqlite":
            # SQLite runs a correlated EXISTS once per person; a set of people it computes once
            # and probes (five times faster at 100k people).
            return Q(pk__in=role_witnesses(item, None, clock).values("person_id"))
        # PostgreSQL turns EXISTS into a semi-join it can hash either way round; an IN set
        # inside an OR becomes a subplan that stops being hashed past work_mem.
        return Q(Exists(role_witnesses(item, OuterRef("pk"), clock)))
    if spec.kind == "activity":
        times = _min_times(item)
        if times > 1:
            matched = Q(GreaterThanOrEqual(_activity_count(item, clock), times))
        else:
            matched = Q(Exists(activity_witnesses(item, OuterRef("pk"), clock)))
        return ~matched if spec.negated else matched
    if spec.kind == "aggregate":
        stored = stored_total_q(item, clock) if facts is not None else None
        if stored is not None:
            return stored
        expression = aggregate_expression(item, OuterRef("pk"), clock)
        kind: FieldType = spec.value_type or "number"
        return condition(expression, kind, item.operator, item.value, clock)
    if spec.kind == "person":
        assert item.field is not None
        return condition(
            value_expression(item.field),
            item.field.type,
            item.operator,
            item.value,
            clock,
            multiple=item.field.multiple,
        )
    nested = [resolve_list(list_id) for list_id in item.value]
    if item.operator == "is":
        # Both lists have the same universe, so "member of X" is X's own condition on this row:
        # inlined, the planner sees one query instead of probing an IN set per person.
        return _either([n.where if n is not None else Q(pk__in=[]) for n in nested])
    # Not a member: no such person among the other list's people, which stays right where a
    # condition on a nullable column would be unknown (NULL) under a plain NOT. NOT EXISTS, not
    # NOT IN: PostgreSQL anti-joins it, where a NOT IN set past work_mem is scanned once per person.
    # SQLite computes an IN set once and probes it, as it does for Has Opportunity.
    found = [n for n in nested if n is not None]
    if connection.vendor == "sqlite":
        return ~_either([Q(pk__in=n.people.values("pk")) for n in found] or [Q(pk__in=[])])
    return ~_either([Q(Exists(n.people.filter(pk=OuterRef("pk")))) for n in found] or [Q(pk__in=[])])


def stored_q(item: CheckedFilter, clock: Clock, facts: StoredFacts | None) -> Q | None:
    """An opportunity or activity filter as a condition on the person's totals row, where that
    row answers it exactly (before negation); None where the roles or activities must, and
    always None without `facts` (the plain evaluation, which reads no precomputed table)."""
    if facts is None:
        return None
    if item.spec.kind == "opportunity":
        stored = stored_presence_q(item)
        if stored is None:
            stored = stored_picklist_q(item, facts)
        return stored
    if item.spec.kind == "activity":
        return stored_activity_q(item, clock, facts)
    return None


# --- counting (PostgreSQL) --------------------------------------------------------------------------
# Memory for one counting statement: enough for PostgreSQL to hash each filter's set of people
# (a million ids take about 40 MB) instead of probing it once per person. Set for that statement
# only (`MemberQuerySet.count`); the server's default (4 MB) stays for everything else.
COUNTING_WORK_MEM = "256MB"


def count_q(
    item: CheckedFilter,
    condition_q: Q,
    clock: Clock,
    facts: StoredFacts | None,
    resolve_list: Callable[[int], Evaluation | None],
) -> Q:
    """One filter as the counting query reads it: a set of people computed once.

    A page of members wants the filter as a condition each person is probed with (EXISTS under
    an OR stops after 50 members); a count wants the opposite, because probing a million people
    one by one takes seconds whatever the filter. Every opportunity, activity and aggregate
    filter that the totals rows do not answer becomes `id IN (its people)`, or NOT IN for the
    Not-variants and totals that zero satisfies: PostgreSQL computes the set once, hashes it
    (`COUNTING_WORK_MEM`) and probes each person in a single pass, under AND, OR and any rule.
    Person attributes and stored facts are conditions on the person's own rows already."""
    spec = item.spec
    if stored_q(item, clock, facts) is not None or spec.kind == "person":
        return condition_q
    if spec.kind == "opportunity":
        return Q(pk__in=role_witnesses(item, None, clock).order_by().values("person_id"))
    if spec.kind == "activity":
        activities = activity_matches(item, clock).filter(on_live_opportunity(item)).order_by()
        times = _min_times(item)
        people: QuerySet[Any] = activities.values("person_id")
        if times > 1:
            people = people.annotate(times=Count("pk")).filter(times__gte=times).values("person_id")
        matched = Q(pk__in=people)
        return ~matched if spec.negated else matched
    if spec.kind == "aggregate":
        if item.operator not in TOTAL_HOLDS or (
            facts is not None and stored_total_q(item, clock) is not None
        ):
            return condition_q  # an operator registered later is answered by its own query
        return aggregate_set_q(item, clock, facts)
    nested = [resolve_list(list_id) for list_id in item.value]
    found = [n for n in nested if n is not None]
    if item.operator == "is":
        return _either([n.counting_sets()[0] for n in found] or [Q(pk__in=[])])
    return ~_either(
        [Q(pk__in=universe().filter(n.counting_sets()[0]).values("pk")) for n in found] or [Q(pk__in=[])]
    )


# Above this share of the live opportunities, an aggregate's constraints are answered by their
# complement (`aggregate_set_q`): the planner's estimate only chooses the way, never the count.
COMPLEMENT_ABOVE = 0.5
# Each total over `_distinct_pairs` (aliased `pairs`), as the totals rows compute it.
PAIR_TOTALS = {
    "number_of_optys": "COUNT(*)",
    "total_opty_amount": "COALESCE(SUM(pairs.amount), 0)",
    "total_opty_expected_revenue": "COALESCE(SUM(pairs.expected_revenue), 0)",
}


def aggregate_set_q(item: CheckedFilter, clock: Clock, facts: StoredFacts | None) -> Q:
    """An aggregate filter with constraints no totals column holds, as one grouped pass over
    the person's distinct live opportunities that meet the constraints: each opportunity once
    per person, a missing amount adding nothing (`selectors.person_opportunity_total`). People
    without such an opportunity have a total of zero: when zero satisfies the operator they are
    members, so the set is then the people whose total does NOT satisfy it, excluded.

    Grouping millions of pairs by person is the cost (seconds at a million people). Where the
    constraints keep most opportunities ("Lead Source is not empty"), the total over them is
    the person's whole total (the sync-maintained totals row, exact) less the total over the few
    they leave out: one pass over the totals rows instead."""
    live_pairs = ContactRole.objects.filter(
        is_deleted=False, person__isnull=False, opportunity__is_deleted=False
    )
    kept = _kept(item, "opportunity__", clock)
    if facts is not None and _share(item, clock) > COMPLEMENT_ABOVE:
        return _aggregate_by_complement(item, live_pairs, kept)
    inner, params = _distinct_pairs(live_pairs.filter(kept))
    holds, having_params = _total_holds(PAIR_TOTALS[item.spec.aggregate], item.operator, item.value)
    zero = _zero_matches(item.operator, item.value)
    having = f"NOT ({holds})" if zero else holds
    # The text is the ORM's own SQL and fixed fragments; every value is a parameter.
    sql = (
        f"SELECT pairs.person_id FROM ({inner}) pairs (person_id, opportunity_id, amount, expected_revenue) "  # noqa: S608
        f"GROUP BY pairs.person_id HAVING {having}"
    )
    people = Q(pk__in=RawSQL(sql, (*params, *having_params)))  # noqa: S611
    return ~people if zero else people


def _distinct_pairs(roles: QuerySet[ContactRole]) -> tuple[str, tuple[Any, ...]]:
    """SQL of the distinct (person, opportunity, amount, expected revenue) of these roles."""
    return (
        roles.order_by()
        .values_list("person_id", "opportunity_id", "opportunity__amount", "opportunity__expected_revenue")
        .distinct()
        .query.sql_with_params()
    )


def _kept(item: CheckedFilter, prefix: str, clock: Clock) -> Q:
    """The opportunities an aggregate's constraints keep, through `prefix`."""
    kept = Q()
    for constraint in item.constraints:
        kept &= _constraint_q(constraint, opportunity_prefix=prefix, clock=clock)
    return kept


def _share(item: CheckedFilter, clock: Clock) -> float:
    """The planner's estimate of the share of live opportunities the constraints keep (0 when
    it cannot tell: the direct way is always right)."""
    live = Opportunity.objects.filter(is_deleted=False)
    everything = plan_estimate(live) or 0
    kept = plan_estimate(live.filter(_kept(item, "", clock))) or 0
    return kept / everything if everything else 0.0


def _aggregate_by_complement(item: CheckedFilter, live_pairs: QuerySet[ContactRole], kept: Q) -> Q:
    """`aggregate_set_q` through the opportunities the constraints leave out. "Left out" is
    "not kept" with an unknown (NULL) taken as not kept, so every live opportunity falls on
    exactly one side and the whole total is the sum of the two."""
    is_kept = Case(When(kept, then=Value(True)), default=Value(False), output_field=BooleanField())
    inner, params = _distinct_pairs(live_pairs.alias(is_kept=is_kept).filter(is_kept=False))
    rest = PAIR_TOTALS[item.spec.aggregate]
    total = f"t.{item.spec.aggregate} - COALESCE(rest.total, 0)"
    holds, holds_params = _total_holds(total, item.operator, item.value)
    zero = _zero_matches(item.operator, item.value)
    # People without a totals row have no live opportunity: a total of zero, as in the direct way.
    sql = (
        f"SELECT t.person_id FROM {PersonOpportunityTotals._meta.db_table} t LEFT JOIN ("  # noqa: S608
        f"SELECT pairs.person_id, {rest} AS total FROM ({inner}) pairs "
        "(person_id, opportunity_id, amount, expected_revenue) GROUP BY pairs.person_id"
        f") rest ON rest.person_id = t.person_id WHERE {f'NOT ({holds})' if zero else holds}"
    )
    people = Q(pk__in=RawSQL(sql, (*params, *holds_params)))  # noqa: S611
    return ~people if zero else people


# The operators `_total_holds` and `_zero_matches` know; others keep the members' condition.
TOTAL_HOLDS = frozenset(
    (
        "is",
        "is_not",
        "greater_than",
        "less_than",
        "at_least",
        "at_most",
        "between",
        "is_empty",
        "is_not_empty",
    )
)


def _total_holds(total: str, op: str, value: Any) -> tuple[str, list[Decimal]]:
    """SQL that a person's total (never NULL) satisfies the operator, and its parameters."""
    if op in ("is_empty", "is_not_empty"):
        return ("FALSE" if op == "is_empty" else "TRUE"), []  # a total is never empty
    numbers = [Decimal(str(v)) for v in (value if isinstance(value, (list, tuple)) else [value])]
    compare = {"greater_than": ">", "less_than": "<", "at_least": ">=", "at_most": "<="}
    if op in compare:
        return f"{total} {compare[op]} %s", numbers[:1]
    if op == "between":
        return f"{total} BETWEEN %s AND %s", numbers[:2]
    among = f"{total} IN ({', '.join(['%s'] * len(numbers))})"
    return (among if op == "is" else f"NOT ({among})"), numbers


def conjunctive_numbers(rule: Rule) -> frozenset[int]:
    """The filters the rule ANDs with everything else (every filter of an ALL list; none under
    an OR). PostgreSQL joins such a filter's EXISTS (a semi-join, NOT EXISTS an anti-join) with
    a hash its parallel workers build together, where an `IN` set is a subplan each of them
    computes again: three times the work on two cores (3.6 s against 1.0 s for "not removed
    from an open opportunity")."""
    if not rule.op:
        return frozenset({rule.number})
    if rule.op == "or" and len(rule.items) > 1:
        return frozenset()
    return frozenset().union(*(conjunctive_numbers(child) for child in rule.items))


def _plain_exists(item: CheckedFilter) -> bool:
    """Whether the members' condition of this filter is one EXISTS (or NOT EXISTS): an
    opportunity or activity filter without a minimum number of times (a count per person)."""
    return item.spec.kind in ("opportunity", "activity") and _min_times(item) == 1


def combine(rule: Rule, conditions: list[Q]) -> Q:
    """The conditions combined by the rule."""
    if not rule.op:
        return conditions[rule.number - 1]
    parts = [combine(child, conditions) for child in rule.items]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if rule.op == "and" else combined | part
    return combined


@dataclass
class Evaluation:
    checked: CheckedDefinition
    clock: Clock
    people: QuerySet[Person]
    conditions: list[Q]
    where: Q  # the conditions combined by the list's logic (people = universe filtered by it)
    # The same members with every filter as a set of people (`count_q`) where PostgreSQL
    # counts, `where` elsewhere, and whether that holds a set (not only person and stored
    # conditions): how the list counts inside another one. Built only when something counts (it
    # asks the planner about aggregates' constraints).
    counting_sets: Callable[[], tuple[Q, bool]]


class MemberQuerySet(QuerySet[Person]):
    """A smart list's members, which count through an equivalent query PostgreSQL counts faster.

    Pages want EXISTS under an OR: walking people by id and probing each stops after 50 members.
    Counts want every filter as one hashed set of people (`count_q`): probing a million people
    one by one takes seconds. Any filter added later (a search, one person) drops the counting
    query, so a count never answers for a different question.
    """

    # The counting query's condition, and whether a filter is a set of people in it.
    counting: Callable[[], tuple[Q, bool]] | None = None

    def _clone(self) -> MemberQuerySet:
        clone = super()._clone()  # type: ignore[misc]  # Django's own hook, absent from the stubs
        clone.counting = self.counting
        return clone

    def _filter_or_exclude(self, negate: bool, args: Any, kwargs: Any) -> MemberQuerySet:
        clone = super()._filter_or_exclude(negate, args, kwargs)  # type: ignore[misc]  # as above
        clone.counting = None
        return clone

    # Other ways to narrow or widen the rows drop the counting query too.
    def complex_filter(self, filter_obj: Any) -> MemberQuerySet:
        clone: MemberQuerySet = super().complex_filter(filter_obj)
        clone.counting = None
        return clone

    def __and__(self, other: Any) -> Any:
        return _without_counting(super().__and__(other))

    def __or__(self, other: Any) -> Any:
        return _without_counting(super().__or__(other))

    def __xor__(self, other: Any) -> Any:
        return _without_counting(super().__xor__(other))  # type: ignore[misc]  # Django 4.2+, not in the stubs

    def count(self) -> int:
        query = self.query
        if (
            self.counting is None
            or self._result_cache is not None  # Django's own count answers from it
            or self._db is not None  # type: ignore[attr-defined]  # .using(): counting asks the default
            or query.is_sliced
            or query.combinator
            or query.is_empty()
            or query.extra
            or query.distinct
            or query.group_by is not None
            or query.values_select
            or query.annotations
        ):
            return super().count()
        where, with_sets = self.counting()
        return count_with_memory(universe().filter(where), without_leader=with_sets)


def _without_counting(combined: Any) -> Any:
    if isinstance(combined, MemberQuerySet):
        combined.counting = None
    return combined


def count_with_memory(queryset: QuerySet[Any], *, without_leader: bool = False) -> int:
    """`queryset.count()` with `COUNTING_WORK_MEM` for that statement alone: set in a
    transaction (a savepoint inside one) and set back after, so the rest of a request keeps the
    server's default; an error rolls the savepoint back, and the setting with it.

    `without_leader` (the statement has sets of people): the leader only gathers. Each process
    of a parallel count builds its own hash of every set (a hashed subplan is not shared), and
    on two cores three builders slow each other down: two do it in about two thirds of the time
    (4.0 s to 3.0 s, 6.4 s to 4.6 s at a million people)."""
    with transaction.atomic(using=queryset.db), connections[queryset.db].cursor() as cursor:
        # Never less than the server gives already (a server tuned above it keeps its figure).
        cursor.execute(
            "SELECT current_setting('work_mem'), "
            "pg_size_bytes(current_setting('work_mem')) < pg_size_bytes(%s), "
            "current_setting('parallel_leader_participation')",
            [COUNTING_WORK_MEM],
        )
        previous, raise_it, leader = cursor.fetchone()
        if raise_it:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [COUNTING_WORK_MEM])
        if without_leader:
            cursor.execute("SELECT set_config('parallel_leader_participation', 'off', true)")
        count = queryset.count()
        if without_leader:
            cursor.execute("SELECT set_config('parallel_leader_participation', %s, true)", [leader])
        cursor.execute("SELECT set_config('work_mem', %s, true)", [previous])
        return count


def universe() -> MemberQuerySet:
    """Every person but merge losers: the people any smart list chooses from."""
    return MemberQuerySet(model=Person).filter(merged_into__isnull=True)


def evaluate(
    definition: Any,
    *,
    catalog: Catalog | None = None,
    ignore_inactive_fields: bool = False,
    clock: Clock | None = None,
    visiting: frozenset[int] = frozenset(),
    precomputed: bool = True,
) -> Evaluation:
    """Check and evaluate a definition. Raises DefinitionError, InactiveFieldsError or
    SmartListCycleError.

    `precomputed=False` is the plain evaluation: every filter reads the roles, opportunities
    and activities themselves, never the sync-maintained per-person rows, and counts run the
    members' own query. The benchmark and the tests check the fast path against it."""
    from .models import SmartList

    catalog = catalog or Catalog.load()
    clock = clock or Clock.current()
    checked = check_definition(definition, catalog)
    if checked.warnings and not ignore_inactive_fields:
        raise InactiveFieldsError(checked.warnings, checked.inactive_locations)

    resolved: dict[int, Evaluation | None] = {}

    def resolve_list(list_id: int) -> Evaluation | None:
        if list_id in visiting:
            raise SmartListCycleError(
                f"smart list {list_id} would contain itself through Member of Smart List"
            )
        if list_id not in resolved:  # the members' and the counting query both ask
            nested = SmartList.objects.filter(pk=list_id).first()
            resolved[list_id] = (
                None
                if nested is None
                else evaluate(
                    nested.definition,
                    catalog=catalog,
                    ignore_inactive_fields=ignore_inactive_fields,
                    clock=clock,
                    visiting=visiting | {list_id},
                    precomputed=precomputed,
                )
            )
        return resolved[list_id]

    facts = StoredFacts.load() if precomputed else None
    conditions = [filter_q(item, clock, resolve_list, facts) for item in checked.filters]
    rule = checked.rule
    where = combine(rule, conditions)
    people = universe().filter(where)

    numbered = list(enumerate(zip(checked.filters, conditions, strict=True), start=1))

    @functools.cache  # the counting query and a list counting this one both ask
    def as_sets() -> dict[int, tuple[Q, bool]]:
        """Each filter as the counting query reads it (`count_q`), and whether that is or holds
        a set of people: a person or stored condition is not; a list is if its own count is."""
        found: dict[int, tuple[Q, bool]] = {}
        for number, (item, condition_q) in numbered:
            counted = count_q(item, condition_q, clock, facts, resolve_list)
            if item.spec.kind == "smart_list":
                lists = [resolve_list(list_id) for list_id in item.value]
                holds = item.operator != "is" or any(n.counting_sets()[1] for n in lists if n is not None)
            else:
                holds = counted is not condition_q
            found[number] = (counted, holds)
        return found

    @functools.cache
    def counting_sets() -> tuple[Q, bool]:
        """Every filter as a set of people: how a list counts inside another one."""
        sets = as_sets()
        return combine(rule, [sets[number][0] for number, _ in numbered]), any(h for _, h in sets.values())

    def counting() -> tuple[Q, bool]:
        """`counting_sets`, but a plain EXISTS / NOT EXISTS that the rule ANDs with everything
        else stays one (`conjunctive_numbers`). Beside an aggregate or a list counted as a set
        none does: the planner then nests loops around the set's grouping (0.8 s became 13 s).
        Also whether a set of people is in it (`count_with_memory` asks)."""
        sets = as_sets()
        joined = conjunctive_numbers(rule)
        if any(item.spec.kind in ("aggregate", "smart_list") and sets[n][1] for n, (item, _) in numbered):
            joined = frozenset()
        chosen = {
            number: (condition_q, False) if number in joined and _plain_exists(item) else sets[number]
            for number, (item, condition_q) in numbered
        }
        counted_where = combine(rule, [chosen[number][0] for number, _ in numbered])
        return counted_where, any(holds for _, holds in chosen.values())

    if precomputed and connection.vendor == "postgresql":
        people.counting = functools.cache(counting)
        return Evaluation(checked, clock, people, conditions, where, counting_sets)
    # SQLite and the plain evaluation count the members' own query.
    return Evaluation(checked, clock, people, conditions, where, lambda: (where, False))


def smart_list_people(definition: Any, **options: Any) -> QuerySet[Person]:
    return evaluate(definition, **options).people
