"""Plain typed records and field descriptions, as the rest of OppSync sees Salesforce.

REST returns JSON, Bulk API 2.0 returns CSV text; both are normalised here by the field's describe
type, so the sync engine sees the same Python values from either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

# Types the sync cannot store meaningfully (compound or binary); describe still lists them.
UNSYNCABLE_TYPES = frozenset({"address", "location", "base64", "complexvalue", "anyType"})
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
INTEGER_TYPES = frozenset({"int", "long"})


@dataclass(frozen=True)
class FieldInfo:
    """One field of an object's describe."""

    name: str
    label: str
    type: str
    soap_type: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    custom: bool = False
    calculated: bool = False
    nillable: bool = True
    filterable: bool = True
    picklist_values: tuple[str, ...] = ()
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None

    @classmethod
    def from_describe(cls, raw: dict[str, Any]) -> FieldInfo:
        return cls(
            name=str(raw["name"]),
            label=str(raw.get("label") or raw["name"]),
            type=str(raw.get("type") or "string"),
            soap_type=str(raw.get("soapType") or ""),
            length=int(raw.get("length") or 0),
            precision=int(raw.get("precision") or 0),
            scale=int(raw.get("scale") or 0),
            custom=bool(raw.get("custom")),
            calculated=bool(raw.get("calculated")),
            nillable=bool(raw.get("nillable", True)),
            filterable=bool(raw.get("filterable", True)),
            picklist_values=tuple(
                str(p["value"]) for p in raw.get("picklistValues") or [] if p.get("active", True)
            ),
            reference_to=tuple(raw.get("referenceTo") or ()),
            relationship_name=raw.get("relationshipName"),
        )

    @property
    def syncable(self) -> bool:
        return self.type not in UNSYNCABLE_TYPES


@dataclass
class ObjectDescription:
    name: str
    fields: dict[str, FieldInfo] = field(default_factory=dict)


def parse_value(field_type: str, raw: Any) -> Any:
    """A REST JSON value or a Bulk CSV cell, as a Python value of the field's type."""
    if raw is None or raw == "":
        return None
    try:
        if field_type == "boolean":
            return raw if isinstance(raw, bool) else str(raw).lower() == "true"
        if field_type in INTEGER_TYPES:
            return int(Decimal(str(raw)))
        if field_type in NUMBER_TYPES:
            return Decimal(str(raw))
        if field_type == "date":
            return dt.date.fromisoformat(str(raw)[:10])
        if field_type == "datetime":
            return parse_datetime(str(raw))
    except (InvalidOperation, ValueError) as error:
        raise ValueError(f"{raw!r} is not a valid {field_type}") from error
    return str(raw)


def parse_datetime(text: str) -> dt.datetime:
    """`2013-05-20T20:49:32.000+0000` (REST) or `...000Z` (Bulk) as an aware UTC datetime."""
    normalized = text.strip().replace("Z", "+00:00")
    if len(normalized) >= 5 and normalized[-5] in "+-" and normalized[-3] != ":":
        normalized = normalized[:-2] + ":" + normalized[-2:]
    return dt.datetime.fromisoformat(normalized).astimezone(dt.UTC)


def soql_datetime(value: dt.datetime) -> str:
    """A SOQL datetime literal with milliseconds in UTC."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def json_value(value: Any) -> Any:
    """A Python field value as JSON (custom_fields, activity values): numbers stay numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
