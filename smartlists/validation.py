"""Checking a smart-list definition (contract §4) against the registry and the current fields.

Every problem is reported under a key that names where it is, e.g.
`filters[1].constraints[0].operator`, so an API client or the builder can point at it. A
constraint on an Opportunity field that was active once and is not any more is not an error of
the definition: it is a warning, and the list evaluates without that constraint only when the
reader confirms (`ignore_inactive_fields`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

from .logic import LogicError, Rule, logic_rule
from .registry import (
    FILTERS,
    OPERATORS,
    RELATIVE_UNITS,
    TIME_FRAMES,
    Catalog,
    ConstraintField,
    FieldType,
    FilterSpec,
)

# ASCII digits only ([0-9], not \d): other scripts' digits would reach int() as numbers.
RELATIVE = re.compile(r"^\s*([0-9]{1,4})\s+(day|week|month|year)s?\s*$", re.IGNORECASE)
MAX_FILTERS = 50
MAX_CONSTRAINTS = 25
MAX_VALUES = 500
# The dates Salesforce stores ("Minimum and Maximum Dates" in the SOQL reference): nothing synced
# lies outside, and a window around any date inside stays far from Python's year 1 and 9999.
EARLIEST_DATE = dt.date(1700, 1, 1)
LATEST_DATE = dt.date(4000, 12, 31)
# A relative window reaches back or ahead at most this far (in days: "1000 years" is the bound).
MAX_RELATIVE_DAYS = {"day": 1, "week": 7, "month": 31, "year": 366}
MAX_RELATIVE_YEARS = 1000
# Numbers are compared as NUMERIC(30, 10) (`evaluate.NUMBER`): below 1e15 with at most 10
# decimal places they fit it exactly; the totals keep amounts to the cent.
MAX_NUMBER = 10**15
NUMBER_PLACES = 10
# Opportunity totals and counts filters whose values are whole numbers or cents.
WHOLE_NUMBER_FIELDS = {"number_of_optys", "min_number_of_times"}
CENT_FIELDS = {"total_opty_amount", "total_opty_expected_revenue"}


class DefinitionError(Exception):
    """A definition that cannot be evaluated; `errors` maps a location to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Constraint:
    field: ConstraintField
    operator: str
    value: Any


@dataclass
class CheckedFilter:
    spec: FilterSpec
    constraints: list[Constraint]
    # person_field's field, opportunity_was_updated's changed field.
    field: ConstraintField | None = None
    operator: str = ""
    value: Any = None
    # Constraints left out because their Opportunity field is no longer active.
    inactive_fields: list[str] = dataclasses.field(default_factory=list)


@dataclass
class CheckedDefinition:
    logic: str
    # The logic parsed: which filters combine how (evaluation combines their conditions by it).
    rule: Rule
    filters: list[CheckedFilter]
    warnings: list[str]
    # Where each constraint on a no-longer-synced field is, e.g. "filters[0].constraints[2].field".
    inactive_locations: dict[str, str] = dataclasses.field(default_factory=dict)


def _relative(value: Any) -> tuple[int, str] | None:
    if not isinstance(value, str):
        return None
    match = RELATIVE.match(value)
    if not match:
        return None
    unit = match.group(2).lower()
    assert unit in RELATIVE_UNITS
    return int(match.group(1)), unit


def _is_number(value: Any) -> bool:
    # NaN is not a number, nor are the infinities (JSON has neither; Python's parser reads both).
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: Any) -> str:
    """A value as a message quotes it: long ones cut, so an error never echoes a megabyte."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unstorable_character(text: str) -> str | None:
    """Why `text` cannot be stored or compared (NUL, which PostgreSQL refuses in text and JSON;
    a lone surrogate, which no UTF-8 database accepts), or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if any("\ud800" <= char <= "\udfff" for char in text):
        return "contains an unpaired surrogate (\\ud800-\\udfff), which is not a character"
    return None


def unstorable_places(value: Any, where: str, errors: dict[str, list[str]]) -> None:
    """Every string of a JSON value, keys too, that the database would refuse, by its place
    (`triggers[0].constraints[1].value`), added to `errors`. A place never quotes a key that is
    itself unstorable (the error would be unrenderable): that key is shown escaped."""
    if isinstance(value, str):
        problem = unstorable_character(value)
        if problem:
            errors.setdefault(where, []).append(f"the text {problem}")
    elif isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            problem = unstorable_character(name)
            if problem:
                errors.setdefault(where, []).append(f"a key {problem}")
                name = name.encode("ascii", "backslashreplace").decode("ascii")
            unstorable_places(item, f"{where}.{name}" if where else name, errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            unstorable_places(item, f"{where}[{index}]", errors)


def _date_value(value: Any, kind: FieldType) -> dt.date | dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        if kind == "datetime" and "T" in value:
            return parse_datetime(value)
        return parse_date(value)
    except ValueError:
        return None


def _one(value: Any, kind: FieldType, cf: ConstraintField | None = None) -> tuple[Any, str | None]:
    """One value of a field type, converted, or an error message."""
    if kind in ("text", "picklist"):
        if not isinstance(value, str) or len(value) > 1000:
            return None, "must be a text value of at most 1000 characters"
        problem = unstorable_character(value)
        if problem:
            return None, problem
        if cf is not None and cf.multiple and ";" in value:
            return None, f"{_short(value)} holds ';': a multi-select picklist value is one value, without ';'"
        return value, None
    if kind in ("number", "currency", "percent"):
        if not _is_number(value):
            return None, "must be a number"
        if abs(value) >= MAX_NUMBER:
            return None, f"{_short(value)} is too large: numbers lie between -10^15 and 10^15"
        exact = Decimal(str(value))
        places = -exact.as_tuple().exponent  # type: ignore[operator]  # finite: an int exponent
        name = cf.field if cf is not None else ""
        if name in WHOLE_NUMBER_FIELDS and exact != exact.to_integral_value():
            return None, f"{_short(value)} is not a whole number: {cf.label if cf else name} counts"
        if name == "min_number_of_times" and exact < 1:
            return None, f"{_short(value)} is below 1: an activity is counted at least once"
        if name in CENT_FIELDS and places > 2:
            return None, f"{_short(value)} has more than 2 decimal places: totals are kept to the cent"
        if places > NUMBER_PLACES:
            return None, f"{_short(value)} has more than {NUMBER_PLACES} decimal places"
        return value, None
    if kind in ("date", "datetime"):
        parsed = _date_value(value, kind)
        if parsed is None:
            return None, "must be a date (YYYY-MM-DD)" + (" or an ISO datetime" if kind == "datetime" else "")
        day = parsed.date() if isinstance(parsed, dt.datetime) else parsed
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            return None, (
                f"{_short(value)} lies outside the dates Salesforce stores "
                f"({EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()})"
            )
        return parsed, None
    return None, "takes no value"


def check_value(cf: ConstraintField, operator: str, value: Any) -> tuple[Any, str | None]:
    """The operator's value for this field, converted for evaluation, or an error message."""
    kind = OPERATORS[operator].value
    if kind == "none":
        return None, None
    if kind == "relative":
        relative = _relative(value)
        if relative is None:
            return None, 'must be an amount of time such as "30 days", "3 weeks", "2 months" or "1 year"'
        amount, unit = relative
        if amount * MAX_RELATIVE_DAYS[unit] > MAX_RELATIVE_YEARS * MAX_RELATIVE_DAYS["year"]:
            return None, f"{_short(value)} reaches too far: a window spans at most {MAX_RELATIVE_YEARS} years"
        return relative, None
    if kind == "time_frame":
        if value in TIME_FRAMES:
            return value, None
        return None, f"must be one of {', '.join(TIME_FRAMES)}"
    if kind == "pair":
        if not isinstance(value, list) or len(value) != 2:
            return None, "must be a list of two values [low, high]"
        low, error = _one(value[0], cf.type, cf)
        high, error2 = _one(value[1], cf.type, cf)
        if error or error2:
            return None, f"both ends {error or error2}"
        if _comparable(low) > _comparable(high):
            return None, "the low end is above the high end"
        return (low, high), None
    if kind == "many":
        values = value if isinstance(value, list) else [value]
        if cf.type == "picklist" and not isinstance(value, list | str):
            return None, "must be a list of picklist values"
        if not values or len(values) > MAX_VALUES:
            return None, f"must list 1 to {MAX_VALUES} values"
        converted = []
        for item in values:
            one, error = _one(item, cf.type, cf)
            if error:
                return None, error
            converted.append(one)
        return converted, None
    return _one(value, cf.type, cf)


def _comparable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=dt.UTC).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.min, tzinfo=dt.UTC).timestamp()
    return value


def _check_constraint(
    where: str, raw: Any, fields: dict[str, ConstraintField], catalog: Catalog, errors: dict[str, list[str]]
) -> Constraint | str | None:
    """A constraint, the API name of an inactive field it names (str), or None after an error."""
    if not isinstance(raw, dict):
        errors[where] = ["must be an object with field, operator and value"]
        return None
    name = raw.get("field")
    if not isinstance(name, str) or name not in fields:
        if isinstance(name, str) and name in catalog.inactive_opportunity:
            return name
        errors[f"{where}.field"] = [
            f"{name!r} is not a field this filter offers (an unknown field, or one the integration user cannot read)"
        ]
        return None
    cf = fields[name]
    operator = raw.get("operator")
    if operator not in cf.allowed_operators():
        errors[f"{where}.operator"] = [
            f"{operator!r} is not an operator of {cf.type} fields; use one of {', '.join(cf.allowed_operators())}"
        ]
        return None
    value, error = check_value(cf, operator, raw.get("value"))
    if error:
        errors[f"{where}.value"] = [f"{cf.label} {OPERATORS[operator].label}: the value {error}"]
        return None
    return Constraint(cf, operator, value)


def check_definition(
    definition: Any, catalog: Catalog, *, smart_list_ids: set[int] | None = None
) -> CheckedDefinition:
    """Check a definition; raise DefinitionError naming every problem by its place."""
    errors: dict[str, list[str]] = {}
    if not isinstance(definition, dict):
        raise DefinitionError({"definition": ["must be an object with logic and filters"]})
    # Before anything reads them: a string the database refuses is a 500 wherever it goes.
    unstorable_places(definition, "", errors)
    if errors:
        raise DefinitionError(errors)
    raw_filters = definition.get("filters")
    if not isinstance(raw_filters, list) or not 1 <= len(raw_filters) <= MAX_FILTERS:
        raise DefinitionError({"filters": [f"must be a list of 1 to {MAX_FILTERS} filters"]})
    logic = definition.get("logic", "all")
    rule: Rule | None = None
    if not isinstance(logic, str):
        errors["logic"] = ['must be "all", "any" or a rule such as "1 and (2 or 3)"']
    else:
        try:
            rule = logic_rule(logic, len(raw_filters))
        except LogicError as error:
            errors["logic"] = [str(error)]
    checked: list[CheckedFilter] = []
    warnings: list[str] = []
    inactive_locations: dict[str, str] = {}
    for index, raw in enumerate(raw_filters):
        where = f"filters[{index}]"
        if not isinstance(raw, dict):
            errors[where] = ["must be an object with a filter key"]
            continue
        spec = FILTERS.get(raw.get("filter"))  # type: ignore[arg-type]  # any JSON value may arrive
        if spec is None:
            errors[f"{where}.filter"] = [
                f"{raw.get('filter')!r} is not a filter; use one of {', '.join(FILTERS)}"
            ]
            continue
        item = CheckedFilter(spec, [])
        if spec.kind == "person":
            name = raw.get("field")
            cf = catalog.person.get(name) if isinstance(name, str) else None
            if cf is None:
                errors[f"{where}.field"] = [f"{name!r} is not a person field"]
                continue
            constraint = _check_constraint(where, {**raw, "field": name}, catalog.person, catalog, errors)
            if isinstance(constraint, Constraint):
                item.field, item.operator, item.value = cf, constraint.operator, constraint.value
                checked.append(item)
            continue
        if spec.kind == "smart_list":
            ids = raw.get("value")
            if raw.get("operator", "is") not in ("is", "is_not"):
                errors[f"{where}.operator"] = ["must be is or is_not"]
            elif (
                not isinstance(ids, list)
                or not ids
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
            ):
                errors[f"{where}.value"] = ["must be a list of smart list ids"]
            elif smart_list_ids is not None and not set(ids) <= smart_list_ids:
                errors[f"{where}.value"] = [f"no smart list with id {sorted(set(ids) - smart_list_ids)[0]}"]
            else:
                item.operator, item.value = raw.get("operator", "is"), ids
                checked.append(item)
            continue
        if spec.kind == "aggregate":
            assert spec.value_type is not None
            cf = ConstraintField(spec.key, spec.label, spec.value_type)
            constraint = _check_constraint(where, {**raw, "field": spec.key}, {spec.key: cf}, catalog, errors)
            if isinstance(constraint, Constraint):
                item.operator, item.value = constraint.operator, constraint.value
        if spec.needs_field and spec.kind == "activity":
            name = raw.get("field")
            if isinstance(name, str) and name in catalog.opportunity:
                item.field = catalog.opportunity[name]
            elif isinstance(name, str) and name in catalog.inactive_opportunity:
                errors[f"{where}.field"] = [f"{name!r} is no longer synced (inactive in Salesforce describe)"]
            else:
                errors[f"{where}.field"] = [f"{name!r} is not an Opportunity field (which field changed?)"]
        raw_constraints = raw.get("constraints", [])
        if not isinstance(raw_constraints, list) or len(raw_constraints) > MAX_CONSTRAINTS:
            errors[f"{where}.constraints"] = [f"must be a list of at most {MAX_CONSTRAINTS} constraints"]
            continue
        fields = catalog.constraint_fields(spec)
        if spec.kind == "aggregate":
            fields = dict(catalog.opportunity)
        if item.field is not None:
            multiple = item.field.multiple
            value_field = ConstraintField(
                "new_value",
                "New value",
                item.field.type,
                item.field.values,
                source="activity",
                multiple=multiple,
            )
            fields["new_value"] = value_field
            fields["previous_value"] = ConstraintField(
                "previous_value",
                "Previous value",
                item.field.type,
                item.field.values,
                source="activity",
                multiple=multiple,
            )
        for c_index, raw_constraint in enumerate(raw_constraints):
            result = _check_constraint(
                f"{where}.constraints[{c_index}]", raw_constraint, fields, catalog, errors
            )
            if isinstance(result, str):
                item.inactive_fields.append(result)
                message = (
                    f"Filter {index + 1} ({spec.label}) has a constraint on {result}, a field that is no longer "
                    "synced (Salesforce describe no longer shows it to the integration user)."
                )
                warnings.append(message)
                inactive_locations[f"{where}.constraints[{c_index}].field"] = message
            elif result is not None:
                item.constraints.append(result)
        checked.append(item)
    if errors:
        raise DefinitionError(errors)
    assert isinstance(logic, str) and rule is not None  # else errors["logic"] was raised above
    return CheckedDefinition(
        logic=logic, rule=rule, filters=checked, warnings=warnings, inactive_locations=inactive_locations
    )
