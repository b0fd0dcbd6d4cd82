"""Opportunities, contact roles, their history, the field catalog from describe, and sync state."""

from __future__ import annotations

from typing import TypeVar

from django.db import models

from people.models import Person

_M = TypeVar("_M", bound=models.Model)


class LiveManager(models.Manager[_M]):
    """Rows not deleted in Salesforce: what lists, filters and the Opportunity Info tab show."""

    def get_queryset(self) -> models.QuerySet[_M]:
        return super().get_queryset().filter(is_deleted=False)


class Opportunity(models.Model):
    """A Salesforce Opportunity.

    Standard fields are columns (`SALESFORCE_COLUMNS` maps API names to them); every other field
    describe shows, standard or custom, is in `custom_fields` keyed by its API name (`Region__c`).
    `currency_iso_code` is kept but never displayed: amounts show in the subscription's default
    currency. A deleted opportunity stays as a tombstone (`is_deleted`) so that its history and
    re-reads of old versions keep working; `Opportunity.live` hides it.
    """

    SALESFORCE_COLUMNS: dict[str, str] = {
        "Name": "name",
        "AccountId": "account_sf_id",
        "StageName": "stage_name",
        "Amount": "amount",
        "ExpectedRevenue": "expected_revenue",
        "Probability": "probability",
        "CloseDate": "close_date",
        "Type": "type",
        "LeadSource": "lead_source",
        "IsClosed": "is_closed",
        "IsWon": "is_won",
        "ForecastCategoryName": "forecast_category",
        "NextStep": "next_step",
        "CurrencyIsoCode": "currency_iso_code",
        "OwnerId": "owner_sf_id",
        "CreatedDate": "created_in_salesforce",
        "LastModifiedDate": "last_modified_in_salesforce",
    }

    sf_id = models.CharField("Salesforce id", max_length=18, unique=True)
    name = models.CharField(max_length=255, blank=True)
    account_sf_id = models.CharField("Salesforce Account id", max_length=18, blank=True)
    account_name = models.CharField(max_length=255, blank=True)
    stage_name = models.CharField("stage", max_length=255, blank=True, db_index=True)
    amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    expected_revenue = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    probability = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    close_date = models.DateField(null=True, blank=True)
    type = models.CharField(max_length=255, blank=True)
    lead_source = models.CharField(max_length=255, blank=True)
    is_closed = models.BooleanField(default=False)
    is_won = models.BooleanField(default=False)
    forecast_category = models.CharField(max_length=255, blank=True)
    next_step = models.CharField(max_length=255, blank=True)
    currency_iso_code = models.CharField(max_length=3, blank=True)
    owner_sf_id = models.CharField("Salesforce owner id", max_length=18, blank=True)
    created_in_salesforce = models.DateTimeField(null=True, blank=True)
    last_modified_in_salesforce = models.DateTimeField(null=True, blank=True)
    system_modstamp = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)
    custom_fields = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    objects = models.Manager()
    live = LiveManager()

    class Meta:
        ordering = ["-close_date", "id"]
        indexes = [
            models.Index(fields=["is_deleted", "is_closed", "is_won"], name="opp_state_idx"),
            models.Index(fields=["close_date"], name="opp_close_date_idx"),
            # The opportunity list: newest close date first, also within one stage.
            models.Index(fields=["-close_date", "id"], name="opp_list_idx"),
            models.Index(fields=["stage_name", "-close_date", "id"], name="opp_stage_list_idx"),
            # Smart lists ask "not a deleted opportunity" of roles and activities: the few deleted
            # ids, read from this small index alone.
            models.Index(fields=["id"], condition=models.Q(is_deleted=True), name="opp_deleted_idx"),
        ]
        verbose_name_plural = "opportunities"

    def __str__(self) -> str:
        return self.name or self.sf_id


class ContactRole(models.Model):
    """A Salesforce OpportunityContactRole: the only link between a person and an opportunity.

    The Salesforce ids are kept as plain strings: a role may point at a contact (or opportunity)
    OppSync does not know yet or cannot see; `person` links up when that contact arrives. A deleted
    role stays as a tombstone (`is_deleted`) like opportunities do.
    """

    sf_id = models.CharField("Salesforce id", max_length=18, unique=True)
    opportunity = models.ForeignKey(
        Opportunity, null=True, blank=True, on_delete=models.SET_NULL, related_name="contact_roles"
    )
    person = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="contact_roles"
    )
    sf_opportunity_id = models.CharField("Salesforce Opportunity id", max_length=18, db_index=True)
    sf_contact_id = models.CharField("Salesforce Contact id", max_length=18, blank=True, db_index=True)
    role = models.CharField(max_length=255, blank=True)
    is_primary = models.BooleanField(default=False)
    system_modstamp = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)
    custom_fields = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    objects = models.Manager()
    live = LiveManager()

    class Meta:
        indexes = [
            models.Index(fields=["person", "is_deleted"], name="role_person_idx"),
            models.Index(fields=["opportunity", "is_deleted"], name="role_opportunity_idx"),
            # Has Opportunity: from the opportunities that meet a filter's constraints to their
            # people, through live roles only, without reading a role row (1.75 s -> 1.1 s for
            # 120k opportunities at 2.5M roles). The role's own constraints (Role, Is Primary)
            # ride along (INCLUDE, PostgreSQL), so a filter with them does not read the role
            # table either.
            models.Index(
                fields=["opportunity", "person"],
                include=["is_primary", "role"],
                condition=models.Q(is_deleted=False),
                name="role_live_cover_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role or 'Contact role'} {self.sf_id}"


class PersonOpportunityTotals(models.Model):
    """Per-person totals over the person's live opportunities (one live role per opportunity), kept
    current by the sync in the same transaction that changes roles or opportunities.

    The aggregate smart-list filters (Total Opty Amount, Number of Optys, Total Opty Expected
    Revenue) compare these indexed columns instead of aggregating millions of roles per query, for
    all opportunities and for the two subsets marketers ask for most: open and won ones. A person
    without a live opportunity or opportunity activity has no row; their totals are zero. `opportunities.totals` computes
    and refreshes them; `manage.py rebuild_opportunity_totals` recomputes every row.
    """

    person = models.OneToOneField(
        Person, primary_key=True, on_delete=models.CASCADE, related_name="opportunity_totals"
    )
    number_of_optys = models.IntegerField(default=0)
    total_opty_amount = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    total_opty_expected_revenue = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    open_number_of_optys = models.IntegerField(default=0)
    open_total_opty_amount = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    open_total_opty_expected_revenue = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    won_number_of_optys = models.IntegerField(default=0)
    won_total_opty_amount = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    won_total_opty_expected_revenue = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    # {"API name=value": true} for each value among the person's live opportunities, for the
    # fields `TotalsCoverage.picklist_fields` names: "has an opportunity whose Segment is
    # Enterprise" reads this row instead of joining a million roles to their opportunities.
    picklist_values = models.JSONField(default=dict, blank=True)
    # The newest Added to / Removed from Opportunity activity on a live opportunity (NULL: none).
    last_added_at = models.DateTimeField(null=True, blank=True)
    last_removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "person opportunity totals"
        indexes = [
            models.Index(fields=[column], name=f"totals_{index}_idx")
            for index, column in enumerate(
                [
                    "number_of_optys",
                    "total_opty_amount",
                    "total_opty_expected_revenue",
                    "open_number_of_optys",
                    "open_total_opty_amount",
                    "open_total_opty_expected_revenue",
                    "won_number_of_optys",
                    "won_total_opty_amount",
                    "won_total_opty_expected_revenue",
                ]
            )
        ] + [
            # Whether any latest time lies after a window's end (then the activities answer).
            models.Index(fields=["last_added_at"], name="totals_last_added_idx"),
            models.Index(fields=["last_removed_at"], name="totals_last_removed_idx"),
        ]

    def __str__(self) -> str:
        return f"Opportunity totals of person {self.person_id}"


class TotalsCoverage(models.Model):
    """What every `PersonOpportunityTotals` row holds beyond the totals (one row, id 1).

    A smart list reads a person's picklist values or latest activity times from the totals row
    only for what is covered here; anything else it computes from the roles and activities.
    `opportunities.totals.rebuild_all_totals` recomputes every row and then widens the coverage to
    the picklist fields describe shows, so a field that appears is covered once a rebuild has
    run (the beat task `opportunities.sync.tasks.totals_coverage_ensure`, about a minute).
    """

    picklist_fields = models.JSONField(default=list, blank=True)
    activity_times = models.BooleanField(
        default=False, help_text="last_added_at and last_removed_at are current in every row"
    )
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "totals coverage"

    def __str__(self) -> str:
        return f"Totals cover {len(self.picklist_fields)} picklist fields"


class SyncLease(models.Model):
    """The one-cycle-at-a-time lease, in the database every worker shares (never a cache that may
    evict it). `token` grows with every acquisition: a fencing token. Every write of a cycle
    first renews the lease for its owner and token in the same transaction, so a worker that
    lost the lease (paused past its expiry, partitioned) can no longer write anything.
    """

    name = models.CharField(max_length=100, unique=True)
    owner = models.CharField(max_length=64, blank=True)
    token = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} held by {self.owner or 'nobody'} (token {self.token})"


class FieldDefinition(models.Model):
    """One field of a Salesforce object as the integration user's describe shows it.

    Built from describe and refreshed about once a minute. A field that vanishes from describe is
    deactivated (`is_active=False`), never deleted, so old values and smart lists stay readable.
    It drives the SELECT list of the sync, the constraint catalog and the API's `custom_fields`.
    """

    sobject = models.CharField("Salesforce object", max_length=80)
    api_name = models.CharField(max_length=255)
    label = models.CharField(max_length=255)
    field_type = models.CharField(max_length=40, help_text="Salesforce describe type, e.g. picklist")
    soap_type = models.CharField(max_length=40, blank=True)
    picklist_values = models.JSONField(default=list, blank=True)
    reference_to = models.JSONField(default=list, blank=True)
    length = models.PositiveIntegerField(default=0)
    precision = models.PositiveIntegerField(default=0)
    scale = models.PositiveIntegerField(default=0)
    is_custom = models.BooleanField(default=False)
    is_calculated = models.BooleanField(default=False)
    is_nillable = models.BooleanField(default=True)
    is_filterable = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sobject", "api_name"], name="field_definition_unique"),
        ]
        ordering = ["sobject", "api_name"]

    def __str__(self) -> str:
        return f"{self.sobject}.{self.api_name}"


class ActivityType(models.TextChoices):
    ADDED_TO_OPPORTUNITY = "added_to_opportunity", "Added to Opportunity"
    REMOVED_FROM_OPPORTUNITY = "removed_from_opportunity", "Removed from Opportunity"
    OPPORTUNITY_UPDATED = "opportunity_updated", "Opportunity is Updated"


class Activity(models.Model):
    """Something that happened to a person's opportunities, recorded by the sync (product.md §2).

    Added/removed carry the contact role's `role` and `is_primary`; an update carries the
    Salesforce API name of the changed `field` with its previous and new values (one activity per
    changed field and per attached person). `is_initial_load` marks what the first full load of its
    object recorded (an object's, not the org's: one object that cannot finish its first load never
    makes the others' changes look old): triggers never fire for it.
    """

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="activities")
    opportunity = models.ForeignKey(
        Opportunity, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    activity_type = models.CharField(max_length=40, choices=ActivityType.choices)
    occurred_at = models.DateTimeField(help_text="When it happened in Salesforce.")
    recorded_at = models.DateTimeField(auto_now_add=True)
    sf_contact_role_id = models.CharField(max_length=18, blank=True)
    role = models.CharField(max_length=255, blank=True)
    is_primary = models.BooleanField(null=True, blank=True)
    field = models.CharField(max_length=255, blank=True, help_text="Salesforce API name")
    previous_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    is_initial_load = models.BooleanField(default=False)
    # The cycle that recorded it, kept as a plain id: pruning cycle history must not rewrite
    # millions of activities (no ON DELETE SET NULL, no database constraint).
    sync_cycle = models.ForeignKey(
        "SyncCycle",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="activities",
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["person", "activity_type", "occurred_at"], name="activity_person_idx"),
            models.Index(fields=["opportunity", "occurred_at"], name="activity_opportunity_idx"),
            # Smart lists' activity filters: a type (and changed field) over a time window. The
            # person, the opportunity and the role's own constraints ride along, so such a filter
            # reads the index alone, not a heap page per activity.
            models.Index(
                fields=["activity_type", "occurred_at", "person", "opportunity", "role", "is_primary"],
                name="activity_window_idx",
            ),
            models.Index(
                fields=["activity_type", "field", "occurred_at", "person", "opportunity"],
                name="activity_field_window_idx",
            ),
            # The Activities list: newest first, and newest first of one type.
            models.Index(fields=["-occurred_at", "-id"], name="activity_newest_idx"),
            models.Index(fields=["activity_type", "-occurred_at", "-id"], name="activity_type_newest_idx"),
            # The sync status page's latency chart reads the last day of recorded activities.
            models.Index(fields=["recorded_at"], name="activity_recorded_idx"),
        ]
        constraints = [
            # The same change of the same contact role can be recorded once only, whatever two
            # workers or a retried page do: inserts skip a row that exists (ON CONFLICT DO NOTHING).
            models.UniqueConstraint(
                fields=["activity_type", "sf_contact_role_id", "field", "occurred_at"],
                condition=~models.Q(sf_contact_role_id=""),
                name="activity_once_per_change",
            )
        ]
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return f"{self.get_activity_type_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    PAUSED = "paused", "Paused"


class SyncState(models.Model):
    """Where the sync of one Salesforce object stands between cycles.

    `watermark` is the upper bound of the last window that committed (SystemModstamp); the next
    window starts a lookback before it. `deleted_checked_until` is the end of the last getDeleted
    window (whole minutes).
    """

    sobject = models.CharField(max_length=80, unique=True)
    watermark = models.DateTimeField(null=True, blank=True)
    deleted_checked_until = models.DateTimeField(null=True, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    initial_load_completed_at = models.DateTimeField(null=True, blank=True)
    # On the org's clock, like the watermark, and taken before the describe was asked: the next
    # describe's If-Modified-Since is compared with the org's metadata times.
    last_describe_at = models.DateTimeField(null=True, blank=True)
    # One object's failure is that object's: the others go on, and this one waits
    # `retry_after` (doubling with each failure in a row) instead of failing every cycle.
    failure_count = models.PositiveIntegerField(default=0)
    retry_after = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Relationship paths (`Account.Name`) the integration user cannot read, by when that was found
    # (ISO time): left out of the SELECT list rather than stopping the object, tried again daily.
    unreadable_paths = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.sobject} up to {self.watermark}"


class SetAsideRecord(models.Model):
    """A Salesforce record the sync could not store, kept by id until it applies (issue P11).

    A record whose values do not fit OppSync's columns, or whose page failed with a database
    error, is set aside here instead of stopping its page, its object or the cycle: the other
    records commit and the window's watermark still advances. Each cycle re-reads the records
    whose `retry_after` has come (by id, `SELECT ... WHERE Id IN (...)`) and applies them; the wait
    doubles with every attempt, from `SALESFORCE_SET_ASIDE_RETRY_SECONDS` up to an hour. The row
    goes when the record applies (by that retry, or because a later window brought it) or when
    Salesforce no longer returns it (deleted, purged, no longer visible; a log line says so).
    `reason` is what went wrong, in words (`IntegrityError: ...` for a database error).
    """

    sobject = models.CharField("Salesforce object", max_length=80)
    sf_id = models.CharField("Salesforce id", max_length=18)
    reason = models.TextField()
    first_failed_at = models.DateTimeField()
    last_tried_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=1)
    retry_after = models.DateTimeField()

    class Meta:
        ordering = ["sobject", "first_failed_at", "sf_id"]
        constraints = [models.UniqueConstraint(fields=["sobject", "sf_id"], name="set_aside_once_per_record")]
        indexes = [models.Index(fields=["sobject", "retry_after"], name="set_aside_due_idx")]

    def __str__(self) -> str:
        return f"{self.sobject} {self.sf_id} set aside: {self.reason[:80]}"


class CycleTrigger(models.TextChoices):
    POLL = "poll", "Poll"
    WAKE = "wake", "Change event"
    OPERATOR = "operator", "Operator"


class SyncCycle(models.Model):
    """One sync cycle over all objects: when it ran, how it ended, what it cost."""

    started_at = models.DateTimeField()
    # What started it: beat's poll, a change event's wake-up (the listener), or the operator's command.
    trigger = models.CharField(max_length=20, choices=CycleTrigger.choices, default=CycleTrigger.POLL)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    error_message = models.TextField(blank=True)
    api_calls = models.PositiveIntegerField(default=0)
    api_usage_used = models.PositiveIntegerField(null=True, blank=True)
    api_usage_max = models.PositiveIntegerField(null=True, blank=True)
    # Some object this cycle read was in its first load (the status page's progress, the budget's
    # expensive cycles); each activity carries its own object's flag.
    is_initial_load = models.BooleanField(default=False)
    reconciled = models.BooleanField(default=False)
    # This host's clock minus Salesforce's (from the responses' Date header), in seconds.
    clock_skew_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["status", "started_at"], name="sync_cycle_status_idx")]

    def __str__(self) -> str:
        return f"Cycle {self.pk} {self.status} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class SyncObjectRun(models.Model):
    """What one cycle did for one Salesforce object: counts, window, calls, outcome."""

    cycle = models.ForeignKey(SyncCycle, on_delete=models.CASCADE, related_name="object_runs")
    sobject = models.CharField(max_length=80)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    deleted_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # Records Salesforce reported for this run's window (its totalSize); with the counts above,
    # kept current page by page, it gives a first load's progress and the backlog.
    expected_count = models.PositiveIntegerField(null=True, blank=True)
    api_calls = models.PositiveIntegerField(default=0)
    error_message = models.TextField(blank=True)
    # This run read its object's first load ("initial" is per object: a cycle that loads Lead
    # for the first time reads the others live). The status page's first-load panel lists these.
    is_initial_load = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at", "sobject"]
        indexes = [models.Index(fields=["sobject", "started_at"], name="sync_object_run_idx")]

    def __str__(self) -> str:
        return f"{self.sobject} in cycle {self.cycle_id}"

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def processed_count(self) -> int:
        return (
            self.created_count
            + self.updated_count
            + self.deleted_count
            + self.skipped_count
            + self.failed_count
        )

    @property
    def backlog(self) -> int:
        """Records of the window Salesforce reported that this run has not applied (yet)."""
        if not self.expected_count:
            return 0
        return max(0, self.expected_count - self.processed_count)


class ChangeStream(models.Model):
    """What every listener, worker and beat shares about the change-event wake-up (issue P15).

    Events only wake the sync; the window poll stays the only writer. A listener that wants a
    cycle adds one to `wake_seq`; the cycle that gets the lease copies `wake_seq` into
    `served_seq` before it reads Salesforce, so every wake-up that came before its start is served
    by it, and one that came during it leaves `wake_seq > served_seq`: exactly one more cycle
    follows, however many events and listeners (on however many machines) asked for it.

    `replay_ids` (topic → hex of the opaque replay id) is where a listener resumes; an id is stored
    only once a cycle that started after its event (a higher cycle id) has succeeded.
    `wake_tokens` / `wake_tokens_at` are the token bucket that caps cycles caused by events within
    SALESFORCE_API_BUDGET (None: full).

    `gone_hints` (object → ids) are the ids of DELETE events not yet checked: a contact role
    deleted directly is a hard delete, which no window and no `IsDeleted` shows. The next cycle
    asks Salesforce for those ids and removes the rows it no longer has; the event itself is
    never taken as the answer.
    """

    name = models.CharField(max_length=40, unique=True)
    wake_seq = models.BigIntegerField(default=0)
    served_seq = models.BigIntegerField(default=0)
    wake_requested_at = models.DateTimeField(null=True, blank=True)
    replay_ids = models.JSONField(default=dict, blank=True)
    replay_stored_at = models.DateTimeField(null=True, blank=True)
    wake_tokens = models.FloatField(null=True, blank=True)
    wake_tokens_at = models.DateTimeField(null=True, blank=True)
    gone_hints = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"Change stream {self.name}: wake-up {self.wake_seq}, served {self.served_seq}"


class ChangeListener(models.Model):
    """One `salesforce_listen` process's view of the change stream, written every few seconds so
    the beat (on any machine) knows whether the stream is healthy and the status page can say why
    it is not. Several listeners may run; the stream is healthy while one of them is."""

    listener_id = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    subscribed_since = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_keepalive_at = models.DateTimeField(null=True, blank=True)
    # Why the stream is down, in words ("" while it is up, or before the first try).
    down_reason = models.TextField(blank=True)
    down_since = models.DateTimeField(null=True, blank=True)
    # Set when the listener stopped cleanly (its row stays for today's counts).
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Events delivered to this listener and the wake-ups it sent, on `counted_on` (UTC day).
    counted_on = models.DateField(null=True, blank=True)
    events_today = models.PositiveIntegerField(default=0)
    wakeups_today = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return f"Listener {self.listener_id}"
