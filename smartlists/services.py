"""Writes and reads of smart lists beyond plain rows: saving with validation, members, CSV,
and why a person is a member."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import OuterRef, QuerySet
from django.utils import timezone

from people.columns import EXPORT_PERSON_FIELDS, SORTABLE_PERSON_FIELDS
from people.models import Person

from .evaluate import (
    Evaluation,
    activity_witnesses,
    aggregate_expression,
    evaluate,
    role_witnesses,
    universe,
    value_expression,
)
from .models import SmartList, referenced_list_ids
from .registry import Catalog
from .validation import DefinitionError, check_definition

# Columns a member table or CSV may show, in the order offered, and those it may sort by: the
# person columns (people/columns.py), which the API's person JSON reads too.
MEMBER_FIELDS = EXPORT_PERSON_FIELDS
MEMBER_ORDERINGS = SORTABLE_PERSON_FIELDS


def smart_list_definition_check(*, definition: Any, smart_list: SmartList | None = None) -> None:
    """Raise DefinitionError unless `definition` may be saved (as `smart_list`): valid against
    the registry and today's fields, naming only lists that exist, and no cycle through Member of
    Smart List."""
    catalog = Catalog.load()
    existing = set(SmartList.objects.values_list("pk", flat=True))
    checked = check_definition(definition, catalog, smart_list_ids=existing)
    if checked.inactive_locations:
        # A list that is saved now must not name fields that are gone already.
        raise DefinitionError({where: [message] for where, message in checked.inactive_locations.items()})
    if smart_list is None or smart_list.pk is None:
        return
    # Walk the lists this one would name; reaching itself is a cycle.
    seen: set[int] = set()
    pending = list(referenced_list_ids(definition))
    definitions = dict(SmartList.objects.values_list("pk", "definition"))
    while pending:
        list_id = pending.pop()
        if list_id == smart_list.pk:
            index = next(
                i
                for i, f in enumerate(definition["filters"])
                if isinstance(f, dict) and f.get("filter") == "member_of_smart_list"
            )
            raise DefinitionError(
                {f"filters[{index}].value": ["this list would contain itself through Member of Smart List"]}
            )
        if list_id in seen:
            continue
        seen.add(list_id)
        pending.extend(referenced_list_ids(definitions.get(list_id, {})))


def smart_list_save(
    *,
    name: str,
    definition: dict[str, Any],
    description: str = "",
    smart_list: SmartList | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> SmartList:
    target = smart_list or SmartList()
    smart_list_definition_check(definition=definition, smart_list=target)
    target.name, target.definition, target.description = name, definition, description
    if target.pk is None and user is not None and user.is_authenticated:
        target.created_by = user
    target.save()
    return target


def members(evaluation: Evaluation, *, ordering: list[str] | None = None) -> QuerySet[Person]:
    order = [o for o in ordering or [] if o.lstrip("-") in MEMBER_ORDERINGS] or ["id"]
    if "id" not in {o.lstrip("-") for o in order}:
        order.append("id")
    return evaluation.people.order_by(*order)


class _Echo:
    def write(self, value: str) -> str:
        return value


def members_csv_rows(people: QuerySet[Person], fields: list[str]) -> Iterator[str]:
    """CSV lines of the members, streamed: rows come from the database in chunks (`iterator`), so
    memory stays flat at any list size."""
    writer = csv.writer(_Echo())
    yield writer.writerow(fields)
    for row in people.values_list(*fields).iterator(chunk_size=2000):
        yield writer.writerow(["" if value is None else _csv_safe(value) for value in row])


def _csv_safe(value: Any) -> Any:
    """A value a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _opportunity_json(opportunity: Any) -> dict[str, Any] | None:
    if opportunity is None:
        return None
    return {"id": opportunity.pk, "sf_id": opportunity.sf_id, "name": opportunity.name}


def smart_list_why(evaluation: Evaluation, person: Person) -> dict[str, Any]:
    """Which filters the person matches and, per opportunity filter, the opportunity or activity
    that satisfied it (the newest matching one)."""
    clock = evaluation.clock
    one = universe().filter(pk=person.pk)
    explained = []
    for index, (item, condition) in enumerate(
        zip(evaluation.checked.filters, evaluation.conditions, strict=True)
    ):
        matched = one.filter(condition).exists()
        entry: dict[str, Any] = {
            "number": index + 1,
            "filter": item.spec.key,
            "label": item.spec.label,
            "matched": matched,
        }
        kind = item.spec.kind
        if kind == "opportunity" and matched:
            role = (
                role_witnesses(item, person.pk, clock)
                .select_related("opportunity")
                .order_by("-opportunity__close_date", "id")
                .first()
            )
            if role is not None:
                entry["opportunity"] = _opportunity_json(role.opportunity)
                entry["contact_role"] = {"id": role.pk, "role": role.role, "is_primary": role.is_primary}
        elif kind == "activity":
            found = (
                activity_witnesses(item, person.pk, clock)
                .select_related("opportunity")
                .order_by("-occurred_at", "-id")
            )
            if item.spec.negated:
                entry["explanation"] = (
                    "no matching activity in the window"
                    if matched
                    else "a matching activity exists in the window"
                )
                if not matched:
                    first = found.first()
                    entry["activity"] = _activity_json(first)
            elif matched:
                entry["activity"] = _activity_json(found.first())
                entry["count"] = found.count()
        elif kind == "aggregate":
            value = (
                one.annotate(total=aggregate_expression(item, OuterRef("pk"), clock))
                .values_list("total", flat=True)
                .first()
            )
            money = item.spec.value_type == "currency"
            entry["value"] = f"{Decimal(value or 0):.2f}" if money else str(int(value or 0))
        elif kind == "person" and item.field is not None:
            value = (
                one.annotate(field_value=value_expression(item.field))
                .values_list("field_value", flat=True)
                .first()
            )
            entry["value"] = value.isoformat() if value is not None and hasattr(value, "isoformat") else value
        elif kind == "smart_list":
            entry["smart_lists"] = item.value
        explained.append(entry)
    return {
        "person": person.pk,
        "is_member": evaluation.people.filter(pk=person.pk).exists(),
        "logic": evaluation.checked.logic,
        "evaluated_at": timezone.localtime(clock.now).isoformat(),
        "filters": explained,
    }


def _activity_json(activity: Any) -> dict[str, Any] | None:
    if activity is None:
        return None
    return {
        "id": activity.pk,
        "type": activity.activity_type,
        "occurred_at": timezone.localtime(activity.occurred_at).isoformat(),
        "field": activity.field,
        "previous_value": activity.previous_value,
        "new_value": activity.new_value,
        "role": activity.role,
        "is_primary": activity.is_primary,
        "opportunity": _opportunity_json(activity.opportunity),
    }


__all__ = ["evaluate", "members", "members_csv_rows", "smart_list_save", "smart_list_why"]
