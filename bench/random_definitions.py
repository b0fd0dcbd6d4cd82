"""Smart-list definitions nobody chose (issue P12): drawn from the filter registry with a seed.

Each definition has 1-4 filters of any kind the registry offers (Member of Smart List included,
over lists saved beforehand), 0-3 constraints each with any of their field's operators, values
taken from the org's own rows (an opportunity's region, a person's last name, an activity's new
stage), and logic that is ALL, ANY or a random advanced rule. Every definition passes validation:
the generator asks the same catalog the builder does.

`bench/smartlists.py --random 50` times them at scale; `tests/unit/test_random_definitions.py`
checks, on a small org, that every count equals the plain evaluation.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from opportunities.models import Activity, ActivityType, ContactRole, Opportunity
from people.models import Person
from smartlists.registry import (
    FILTERS,
    OPERATORS,
    OPERATORS_BY_TYPE,
    RELATIVE_UNITS,
    TIME_FRAMES,
    Catalog,
    ConstraintField,
    FieldType,
)

NUMBER_TYPES = ("number", "currency", "percent")
TOTAL_COLUMNS = {"total_opty_amount": "amount", "total_opty_expected_revenue": "expected_revenue"}


class Sampler:
    """Values read from random rows of the org: what a marketer would type in a filter."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._bounds: dict[type, tuple[int, int]] = {}

    def row(self, model: Any, **conditions: Any) -> Any:
        """A random row (the first at or after a random id: no ORDER BY random() over millions)."""
        if model not in self._bounds:
            ids = model.objects.order_by("pk").values_list("pk", flat=True)
            first, last = ids.first(), ids.reverse().first()
            self._bounds[model] = (first or 0, last or 0)
        low, high = self._bounds[model]
        start = self.rng.randint(low, high) if high else 0
        queryset = model.objects.filter(**conditions)
        return queryset.filter(pk__gte=start).order_by("pk").first() or queryset.order_by("pk").first()

    def field_value(self, cf: ConstraintField) -> Any:
        """A stored value of this field (None when the row has none)."""
        if cf.source == "role":
            role = self.row(ContactRole)
            return getattr(role, cf.column) if role else None
        if cf.source == "activity":
            activity = self.row(Activity)
            return getattr(activity, cf.column) if activity else None
        model = Person if cf.source == "person" else Opportunity
        found = self.row(model)
        if found is None:
            return None
        if cf.column:
            return getattr(found, cf.column)
        return (found.custom_fields or {}).get(cf.custom_key)

    def changed_value(self, field: str, which: str) -> Any:
        activity = self.row(Activity, activity_type=ActivityType.OPPORTUNITY_UPDATED, field=field)
        return getattr(activity, which) if activity else None


def _json_value(value: Any, kind: FieldType) -> Any:
    """A stored value as a definition writes it, or None when it cannot serve as one."""
    if value is None or value == "":
        return None
    if kind in NUMBER_TYPES:
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            return None
        if not number.is_finite():
            return None
        number = number.quantize(Decimal(1)) if abs(number) >= 1 else number.quantize(Decimal("0.01"))
        return int(number) if number == number.to_integral_value() else float(number)
    if kind in ("date", "datetime"):
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        text = str(value)[:10]
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return None
        return text
    if kind == "boolean":
        return None
    text = str(value)
    return text if 0 < len(text) <= 1000 else None


class Generator:
    """Random definitions over one catalog; `seed` makes the run repeatable."""

    def __init__(self, catalog: Catalog, seed: int, smart_list_ids: list[int] | None = None) -> None:
        self.catalog = catalog
        self.rng = random.Random(seed)
        self.sampler = Sampler(self.rng)
        self.smart_list_ids = smart_list_ids or []

    def definition(self) -> dict[str, Any]:
        count = self.rng.randint(1, 4)
        filters = [self.filter() for _ in range(count)]
        return {"logic": self.logic(count), "filters": filters}

    # --- logic -----------------------------------------------------------------------------------
    def logic(self, count: int) -> str:
        if count == 1:
            return self.rng.choice(["all", "any"])
        choice = self.rng.random()
        if choice < 0.3:
            return "all"
        if choice < 0.55:
            return "any"
        return self._rule(list(range(1, count + 1)), top=True)

    def _rule(self, numbers: list[int], top: bool = False) -> str:
        """A random tree over the numbers in order; mixed and/or always parenthesised."""
        if len(numbers) == 1:
            return str(numbers[0])
        split = self.rng.randint(1, len(numbers) - 1)
        op = self.rng.choice(["and", "or"])
        left, right = self._rule(numbers[:split]), self._rule(numbers[split:])
        text = f"{left} {op} {right}"
        return text if top else f"({text})"

    # --- filters ---------------------------------------------------------------------------------
    def filter(self) -> dict[str, Any]:
        keys = [key for key in FILTERS if key != "member_of_smart_list" or self.smart_list_ids]
        spec = FILTERS[self.rng.choice(keys)]
        body: dict[str, Any] = {"filter": spec.key}
        if spec.kind == "smart_list":
            body["operator"] = self.rng.choice(["is", "is_not"])
            body["value"] = [self.rng.choice(self.smart_list_ids)]
            return body
        if spec.kind == "person":
            cf = self.rng.choice(list(self.catalog.person.values()))
            body["field"] = cf.field
            body.update(self.operator_and_value(cf))
            return body
        if spec.kind == "aggregate":
            assert spec.value_type is not None
            body.update(self.total(spec.aggregate, spec.value_type))
        fields = self.catalog.constraint_fields(spec)
        constraints: list[dict[str, Any]] = []
        if spec.kind == "activity" and spec.needs_field:
            changed = self.rng.choice(list(self.catalog.opportunity.values()))
            if self.rng.random() < 0.8:  # mostly a field the org's activities record changes of
                recorded = self.sampler.row(Activity, activity_type=ActivityType.OPPORTUNITY_UPDATED)
                changed = self.catalog.opportunity.get(recorded.field if recorded else "", changed)
            body["field"] = changed.field
            if self.rng.random() < 0.4:
                constraints.append(self.changed_value(changed))
        if spec.kind == "activity" and self.rng.random() < 0.6:
            constraints.append(self.constraint(fields["date_of_activity"]))
        if spec.kind == "activity" and self.rng.random() < 0.15:
            constraints.append(
                {"field": "min_number_of_times", "operator": "at_least", "value": self.rng.randint(1, 3)}
            )
        offered = [
            cf for name, cf in fields.items() if name not in ("date_of_activity", "min_number_of_times")
        ]
        for cf in self.rng.sample(offered, k=min(len(offered), self.rng.choice([0, 0, 1, 1, 2, 3]))):
            constraints.append(self.constraint(cf))
        if constraints or spec.kind != "aggregate":
            body["constraints"] = constraints
        return body

    def total(self, aggregate: str, kind: FieldType) -> dict[str, Any]:
        operator = self.rng.choice(OPERATORS_BY_TYPE[kind])
        if aggregate == "number_of_optys":
            values: list[Any] = [self.rng.randint(0, 4) for _ in range(2)]
        else:
            sample = self.sampler.field_value(
                ConstraintField("Amount", "Amount", "currency", column=TOTAL_COLUMNS[aggregate])
            )
            base = _json_value(sample, "currency") or 10_000
            values = [int(base * self.rng.choice([1, 2, 3])) for _ in range(2)]
        return {"operator": operator, **self.value_of(operator, kind, values)}

    def constraint(self, cf: ConstraintField) -> dict[str, Any]:
        return {"field": cf.field, **self.operator_and_value(cf)}

    def changed_value(self, changed: ConstraintField) -> dict[str, Any]:
        """new_value / previous_value of an Opportunity was Updated filter: typed like the field."""
        which = self.rng.choice(["new_value", "previous_value"])
        operators = [op for op in OPERATORS_BY_TYPE[changed.type] if OPERATORS[op].value != "relative"]
        operator = self.rng.choice(operators)
        samples = [
            _json_value(self.sampler.changed_value(changed.field, which), changed.type) for _ in range(2)
        ]
        return {
            "field": which,
            "operator": operator,
            **self.value_of(operator, changed.type, samples, changed),
        }

    def operator_and_value(self, cf: ConstraintField) -> dict[str, Any]:
        operator = self.rng.choice(cf.allowed_operators())
        samples = [_json_value(self.sampler.field_value(cf), cf.type) for _ in range(2)]
        return {"operator": operator, **self.value_of(operator, cf.type, samples, cf)}

    def value_of(
        self, operator: str, kind: FieldType, samples: list[Any], cf: ConstraintField | None = None
    ) -> dict[str, Any]:
        """The operator's value from the samples; an operator that needs one the samples lack
        becomes is_not_empty (a valid filter on any field but a boolean)."""
        shape = OPERATORS[operator].value
        if shape == "none":
            return {}
        if shape == "relative":
            amount, unit = self.rng.randint(1, 12), self.rng.choice(RELATIVE_UNITS)
            return {"value": f"{amount} {unit}{'s' if amount > 1 else ''}"}
        if shape == "time_frame":
            return {"value": self.rng.choice(TIME_FRAMES)}
        if kind == "picklist" and cf is not None and cf.values:
            picked = self.rng.sample(list(cf.values), k=min(len(cf.values), self.rng.randint(1, 2)))
            samples = [*picked, *[s for s in samples if s is not None and ";" not in str(s)]]
        usable = [s for s in samples if s is not None]
        if cf is not None and cf.multiple:
            usable = [s for s in usable if ";" not in str(s)]
        if not usable:
            return {"operator": "is_not_empty"} if kind != "boolean" else {"operator": "is_true"}
        if shape == "pair":
            low, high = sorted(usable * 2 if len(usable) == 1 else usable[:2])
            return {"value": [low, high]}
        if shape == "many":
            return {"value": list(dict.fromkeys(usable[: self.rng.randint(1, 2)]))}
        one = usable[0]
        if operator in ("contains", "not_contains"):
            text = str(one)
            start = self.rng.randint(0, max(0, len(text) - 3))
            return {"value": text[start : start + 3] or text}
        if operator in ("starts_with", "not_starts_with"):
            return {"value": str(one)[: self.rng.randint(1, 4)]}
        return {"value": one}


def saved_lists(generator: Generator, count: int = 3) -> list[int]:
    """Smart lists saved from random definitions (without Member of Smart List), for the
    definitions that name one."""
    from smartlists.models import SmartList

    ids = []
    for index in range(count):
        definition = generator.definition()
        # Recursion is its own case: the saved lists name no list.
        definition["filters"] = [
            f for f in definition["filters"] if f["filter"] != "member_of_smart_list"
        ] or [{"filter": "number_of_optys", "operator": "at_least", "value": 1}]
        if definition["logic"] not in ("all", "any"):
            definition["logic"] = "all"
        smart_list, _ = SmartList.objects.update_or_create(
            name=f"bench: random list {index + 1}", defaults={"definition": definition}
        )
        ids.append(smart_list.pk)
    return ids
