"""Reads over synced data, shared by the API, the admin pages and (later) smart lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
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
from django.utils import timezone

from people.models import Person

from .models import (
    Activity,
    ChangeListener,
    ContactRole,
    CycleTrigger,
    FieldDefinition,
    Opportunity,
    SyncCycle,
    SyncObjectRun,
    SyncState,
)
from .sync.schedule import (
    cadence_choice,
    effective_interval,
    listener_healthy,
    listener_running,
    stream_silence_limit,
)


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


# --- the change stream (issue P15) ----------------------------------------------------------------------
WAKE_RATE_MINUTES = 10


@dataclass
class ChangeStreamStatus:
    """The change-event wake-up as the status page and the API show it: the stream's state in
    words, what it delivered today, the wake-ups, and the poll cadence with its reason."""

    mode: str
    state: str  # healthy, down, off, no_listener, subscribing, silent
    headline: str
    topics: list[str]
    pubsub_url: str
    listeners: int
    subscribed_since: dt.datetime | None
    last_event_at: dt.datetime | None
    last_keepalive_at: dt.datetime | None
    down_reason: str
    down_since: dt.datetime | None
    events_today: int
    wakeups_today: int
    woken_cycles_per_minute: float
    cadence_seconds: float
    interval_seconds: float
    cadence_reason: str

    @property
    def state_label(self) -> str:
        """The headline's first word(s), big on the page ("Healthy", "Down")."""
        return self.headline.split(":", 1)[0]

    @property
    def state_detail(self) -> str:
        return self.headline.split(":", 1)[1].strip() if ":" in self.headline else ""


def change_stream_status(now: dt.datetime | None = None) -> ChangeStreamStatus:
    """The listeners seen lately (the healthy one first, else the freshest), today's counts over
    every listener row of today, cycles that change events caused in the last ten minutes, and
    the cadence beat follows."""
    now = now or timezone.now()
    rows = list(ChangeListener.objects.order_by("-seen_at")[:50])
    fresh = [r for r in rows if listener_running(r, now)]
    silence = stream_silence_limit()
    cadence = cadence_choice(
        cdc=settings.SALESFORCE_CDC,
        listeners=fresh,
        now=now,
        sync_interval=float(settings.SALESFORCE_SYNC_INTERVAL),
        safety_interval=float(settings.SALESFORCE_SAFETY_POLL_INTERVAL),
        silence_limit=silence,
    )
    healthy = [r for r in fresh if listener_healthy(r, now, silence_limit=silence)]
    shown = (healthy or fresh)[0] if (healthy or fresh) else None
    if settings.SALESFORCE_CDC == "off":
        state, headline = "off", "Off: SALESFORCE_CDC=off, the sync polls only"
    elif healthy:
        state, headline = "healthy", "Healthy: change events wake the sync"
    elif shown is None:
        state, headline = "no_listener", "No listener is running"
    elif shown.down_reason:
        state, headline = "down", "Down: the sync polls meanwhile"
    elif shown.subscribed_since is None:
        state, headline = "subscribing", "Subscribing"
    else:
        state, headline = "silent", "Silent past its keepalive period: the listener rebuilds it"
    today = now.date()
    counted = [r for r in rows if r.counted_on == today]
    woken = SyncCycle.objects.filter(
        trigger=CycleTrigger.WAKE, started_at__gte=now - dt.timedelta(minutes=WAKE_RATE_MINUTES)
    ).count()
    return ChangeStreamStatus(
        mode=settings.SALESFORCE_CDC,
        state=state,
        headline=headline,
        topics=list(settings.SALESFORCE_CDC_TOPICS),
        pubsub_url=settings.SALESFORCE_PUBSUB_URL,
        listeners=len(fresh),
        subscribed_since=shown.subscribed_since if shown else None,
        last_event_at=max((r.last_event_at for r in fresh if r.last_event_at), default=None),
        last_keepalive_at=max((r.last_keepalive_at for r in fresh if r.last_keepalive_at), default=None),
        down_reason=shown.down_reason if shown and not healthy else "",
        down_since=shown.down_since if shown and not healthy else None,
        events_today=sum(r.events_today for r in counted),
        wakeups_today=sum(r.wakeups_today for r in counted),
        woken_cycles_per_minute=woken / WAKE_RATE_MINUTES,
        cadence_seconds=cadence.seconds,
        interval_seconds=effective_interval(now, base=cadence.seconds),
        cadence_reason=cadence.reason,
    )
