"""Reads over synced data, shared by the API, the admin pages and (later) smart lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Aggregate,
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from people.models import Person

from .models import Activity, ContactRole, FieldDefinition, Opportunity, SyncCycle, SyncObjectRun, SyncState


def active_custom_field_names(sobject: str) -> frozenset[str]:
    """Custom fields describe shows now: the only ones the API lists under `custom_fields`."""
    return frozenset(
        FieldDefinition.objects.filter(sobject=sobject, is_active=True, is_custom=True).values_list(
            "api_name", flat=True
        )
    )


def opportunity_list() -> QuerySet[Opportunity]:
    live_roles = ContactRole.objects.filter(
        opportunity=OuterRef("pk"), is_deleted=False, person__isnull=False
    )
    return Opportunity.live.annotate(has_contact_roles=Exists(live_roles)).order_by("-close_date", "id")


# The Opportunity Info tab's sortable columns: the `sort` value a URL carries -> the ordering.
OPPORTUNITY_INFO_SORTS: dict[str, str] = {
    "name": "opportunity__name",
    "role": "role",
    "primary": "is_primary",
    "stage": "opportunity__stage_name",
    "amount": "opportunity__amount",
    "expected_revenue": "opportunity__expected_revenue",
    "probability": "opportunity__probability",
    "close_date": "opportunity__close_date",
    "closed": "opportunity__is_closed",
    "won": "opportunity__is_won",
    "type": "opportunity__type",
    "lead_source": "opportunity__lead_source",
    "last_modified": "opportunity__last_modified_in_salesforce",
}
OPPORTUNITY_INFO_DEFAULT_SORT = "-close_date"


def person_opportunity_roles(
    person: Person, *, sort: str = OPPORTUNITY_INFO_DEFAULT_SORT
) -> QuerySet[ContactRole]:
    """The Opportunity Info tab: the person's live roles on live opportunities.

    `sort` is a key of OPPORTUNITY_INFO_SORTS, "-" first for descending; an unknown key falls back
    to the default (newest close date first). Empty values sort last either way.
    """
    descending = sort.startswith("-")
    column = OPPORTUNITY_INFO_SORTS.get(sort.lstrip("-"))
    if column is None:
        descending, column = True, OPPORTUNITY_INFO_SORTS["close_date"]
    ordering = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
    return (
        ContactRole.objects.filter(person=person, is_deleted=False, opportunity__is_deleted=False)
        .select_related("opportunity")
        .order_by(ordering, "opportunity_id", "id")
    )


def person_roles_one_per_opportunity(person: Person | int | OuterRef) -> QuerySet[ContactRole]:
    """One live role for each of a person's distinct live opportunities (the role with the lowest
    id), so totals count an opportunity once however many roles the person has on it
    (product.md §3, aggregates).

    It starts from the person's few roles (an index on person) and reaches each opportunity by
    its key: as a per-person subquery over a million people this stays cheap, where testing every
    opportunity for a link to the person does not.
    """
    person_id = person.pk if isinstance(person, Person) else person
    earlier_role = ContactRole.objects.filter(
        person_id=OuterRef("person_id"),
        opportunity_id=OuterRef("opportunity_id"),
        is_deleted=False,
        pk__lt=OuterRef("pk"),
    )
    # django-stubs types a lookup value as a plain id; an OuterRef is what a subquery needs.
    return ContactRole.objects.filter(
        person_id=person_id,  # type: ignore[misc]
        is_deleted=False,
        opportunity__is_deleted=False,
    ).filter(~Exists(earlier_role))


@dataclass(frozen=True)
class OpportunityTotals:
    """The totals row of Opportunity Info, and what the aggregate smart-list filters compare."""

    total_amount: Decimal
    number_of_opportunities: int
    total_expected_revenue: Decimal


_MONEY: DecimalField[Decimal, Decimal] = DecimalField(max_digits=22, decimal_places=2)


def person_opportunity_totals(person: Person) -> OpportunityTotals:
    """Total Opty Amount, Number of Optys, Total Opty Expected Revenue of one person, in one query.

    A missing amount adds nothing; a person without opportunities has zeros.
    """
    totals = person_roles_one_per_opportunity(person).aggregate(
        **{name: aggregate() for name, (aggregate, _money) in OPPORTUNITY_TOTALS.items()}
    )
    return OpportunityTotals(
        total_amount=totals["total_opty_amount"] or Decimal(0),
        number_of_opportunities=totals["number_of_optys"] or 0,
        total_expected_revenue=totals["total_opty_expected_revenue"] or Decimal(0),
    )


# The three totals as (aggregate, type): one table for the Opportunity Info tab and the smart-list
# aggregate filters, so both always show the same numbers.
OPPORTUNITY_TOTALS: dict[str, tuple[Callable[[], Aggregate], bool]] = {
    "total_opty_amount": (lambda: Sum("opportunity__amount"), True),
    "number_of_optys": (lambda: Count("opportunity_id"), False),
    "total_opty_expected_revenue": (lambda: Sum("opportunity__expected_revenue"), True),
}


def person_opportunity_total(
    name: str, person: Person | int | OuterRef, *, condition: Q | None = None
) -> Coalesce:
    """One total of OPPORTUNITY_TOTALS as a subquery expression, for annotating or filtering a
    `QuerySet[Person]` (`person` is usually `OuterRef("pk")`); `condition` narrows the person's
    live opportunities (e.g. won ones only) through `opportunity__...` lookups. No opportunity
    gives 0."""
    aggregate, money = OPPORTUNITY_TOTALS[name]
    roles = person_roles_one_per_opportunity(person)
    if condition is not None:
        roles = roles.filter(condition)
    subquery = roles.order_by().values("person_id").annotate(value=aggregate()).values("value")[:1]
    zero = Value(Decimal(0) if money else 0)
    return Coalesce(Subquery(subquery), zero, output_field=_MONEY if money else IntegerField())


def field_labels(sobjects: tuple[str, ...]) -> dict[str, str]:
    """Salesforce labels by API name for the given objects (active or not, so an old activity of a
    vanished field still reads well). One query."""
    return dict(
        FieldDefinition.objects.filter(sobject__in=sobjects)
        .order_by("is_active", "sobject")  # active definitions win over inactive ones
        .values_list("api_name", "label")
    )


def active_custom_fields(sobjects: tuple[str, ...]) -> list[FieldDefinition]:
    """Active custom fields of the objects, by label, without duplicates across objects."""
    seen: dict[str, FieldDefinition] = {}
    for definition in FieldDefinition.objects.filter(
        sobject__in=sobjects, is_active=True, is_custom=True
    ).order_by("label", "api_name"):
        seen.setdefault(definition.api_name, definition)
    return list(seen.values())


def person_activity_log(
    person: Person,
    *,
    activity_type: str | None = None,
    occurred_from: dt.datetime | None = None,
    occurred_before: dt.datetime | None = None,
) -> QuerySet[Activity]:
    """The Activity Log tab: newest first, optionally of one type and within [from, before)."""
    activities = Activity.objects.filter(person=person).select_related("opportunity")
    if activity_type:
        activities = activities.filter(activity_type=activity_type)
    if occurred_from is not None:
        activities = activities.filter(occurred_at__gte=occurred_from)
    if occurred_before is not None:
        activities = activities.filter(occurred_at__lt=occurred_before)
    return activities.order_by("-occurred_at", "-id")


def opportunity_contact_roles(opportunity: Opportunity) -> QuerySet[ContactRole]:
    """An opportunity's live contact roles with their people (a role may wait for its contact)."""
    return (
        ContactRole.objects.filter(opportunity=opportunity, is_deleted=False)
        .select_related("person")
        .order_by("-is_primary", "role", "id")
    )


def opportunity_activities(opportunity: Opportunity) -> QuerySet[Activity]:
    return (
        Activity.objects.filter(opportunity=opportunity)
        .select_related("person")
        .order_by("-occurred_at", "-id")
    )


def contact_role_list() -> QuerySet[ContactRole]:
    return ContactRole.objects.filter(is_deleted=False, opportunity__is_deleted=False).order_by("id")


def activity_list() -> QuerySet[Activity]:
    return Activity.objects.all().order_by("-occurred_at", "-id")


@dataclass
class ObjectSyncStatus:
    sobject: str
    state: SyncState | None
    last_run: SyncObjectRun | None


def sync_status() -> list[ObjectSyncStatus]:
    """Per object: where the sync stands and what its last cycle did."""
    states = {s.sobject: s for s in SyncState.objects.all()}
    return [
        ObjectSyncStatus(
            sobject=sobject,
            state=states.get(sobject),
            last_run=SyncObjectRun.objects.filter(sobject=sobject).order_by("-started_at", "-id").first(),
        )
        for sobject in ("Contact", "Lead", "Opportunity", "OpportunityContactRole")
    ]


def last_cycles(limit: int = 10) -> QuerySet[SyncCycle]:
    return SyncCycle.objects.order_by("-started_at", "-id")[:limit]
