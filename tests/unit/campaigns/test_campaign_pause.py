"""P11 case 1 and the campaign fault test: a campaign whose evaluation fails at run time is paused
with its reason in words, while every other campaign decides the same batch and the cursor moves
on. Each campaign in turn gets a real database error (a statement PostgreSQL aborts the
transaction for) or a raised one; resuming starts afresh, like any activation."""

from __future__ import annotations

import datetime as dt

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, DataError, OperationalError, connection
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import triggers
from campaigns.models import Campaign, Delivery, TriggerCursor
from campaigns.services import campaign_save
from campaigns.triggers import evaluate_pending
from opportunities.models import FieldDefinition
from tests.factories import ActivityFactory, ContactRoleFactory
from tests.unit.smartlists.conftest import fields  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db
HOOK = "http://127.0.0.1:9/hooks"
# Saved through the ORM, as a row saved before validation refused it would be: evaluating it
# overflows the date arithmetic (9999-12-31 has no next day).
OVERFLOWING = [
    {
        "trigger": "added_to_opportunity",
        "constraints": [{"field": "CloseDate", "operator": "is", "value": ["9999-12-31"]}],
    }
]


@pytest.fixture
def three_campaigns(fields):  # noqa: F811
    TriggerCursor.objects.update(last_activity_id=0)  # migration 0003 made the one row
    made = []
    for name in ("First", "Second", "Third"):
        campaign, _ = campaign_save(
            campaign=None,
            data={
                "name": name,
                "triggers": [{"trigger": "added_to_opportunity"}],
                "webhook": {"url": HOOK, "secret": "whsec_unit_test_secret_012"},
            },
        )
        # Activities in the test are recorded "now"; the campaigns were active a moment before.
        Campaign.objects.filter(pk=campaign.pk).update(active_since=timezone.now() - dt.timedelta(minutes=1))
        made.append(campaign)
    return made


def _activities(count):
    """`count` new Added-to-Opportunity activities; their ids."""
    roles = [ContactRoleFactory() for _ in range(count)]
    return [ActivityFactory(person=r.person, opportunity=r.opportunity).pk for r in roles]


def _delivered(campaign: Campaign) -> set[int]:
    return set(Delivery.objects.filter(campaign=campaign).values_list("activity_id", flat=True))


def test_a_campaign_that_overflows_at_run_time_is_paused_and_the_others_deliver(three_campaigns, api_client):
    first, broken, third = three_campaigns
    Campaign.objects.filter(pk=broken.pk).update(triggers=OVERFLOWING)
    activity_ids = _activities(3)

    evaluate_pending()  # before the fix: OverflowError, the batch rolled back

    assert _delivered(first) == _delivered(third) == set(activity_ids)
    assert _delivered(broken) == set()
    assert TriggerCursor.objects.get().last_activity_id == max(activity_ids)
    broken.refresh_from_db()
    assert broken.is_paused and not broken.is_active and broken.paused_at is not None
    assert "triggers" in broken.paused_reason and "switch it on again" in broken.paused_reason
    # Shown in the API and on the admin's list and editor.
    body = api_client.get(f"/api/v1/campaigns/{broken.pk}/").json()
    assert body["is_active"] is False and body["paused_at"] and body["paused_reason"] == broken.paused_reason
    listing = api_client.get("/admin/campaigns/campaign/").content.decode()
    assert "Paused" in listing and "Paused by the evaluator" in listing
    editor = api_client.get(f"/admin/campaigns/campaign/{broken.pk}/change/").content.decode()
    assert 'id="campaign-paused"' in editor and "Paused by the evaluator" in editor

    # Later activities: the paused campaign is not evaluated again; the others go on.
    later = _activities(2)
    evaluate_pending()
    assert _delivered(first) == _delivered(third) == set(activity_ids + later)
    assert _delivered(broken) == set()


def test_resuming_a_paused_campaign_decides_only_what_happens_after(three_campaigns, api_client):
    _, broken, _ = three_campaigns
    Campaign.objects.filter(pk=broken.pk).update(triggers=OVERFLOWING)
    while_broken = _activities(1)
    evaluate_pending()
    broken.refresh_from_db()
    assert broken.is_paused
    while_paused = _activities(1)
    evaluate_pending()

    # Fixed and switched on again through the API (the admin editor saves the same way).
    response = api_client.patch(
        f"/api/v1/campaigns/{broken.pk}/",
        {"triggers": [{"trigger": "added_to_opportunity"}], "is_active": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["paused_at"] is None and response.json()["paused_reason"] == ""
    after = _activities(1)
    evaluate_pending()
    assert _delivered(broken) == set(after)
    assert not set(while_broken + while_paused) & _delivered(broken)


def _fail_with_sql(*args, **kwargs):
    # A real database error inside the campaign's evaluation: PostgreSQL aborts the whole
    # transaction after it, unless the campaign's savepoint is rolled back.
    with connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM campaigns_campaign")


def _fail_in_python(*args, **kwargs):
    raise OverflowError("date value out of range")


def _fail_with_data(*args, **kwargs):
    raise DataError("invalid input syntax for type numeric") from _Sqlstate("22P02")


@pytest.mark.parametrize(
    "fault", [_fail_with_sql, _fail_in_python, _fail_with_data], ids=["sql-error", "python", "data-error"]
)
@pytest.mark.parametrize("broken_index", [0, 1, 2])
def test_a_database_error_in_any_one_campaign_pauses_only_it(
    three_campaigns, monkeypatch, broken_index, fault
):
    broken = three_campaigns[broken_index]
    real_matching = triggers._matching

    def matching(campaign, *args, **kwargs):
        if campaign.pk == broken.pk:
            fault()
        return real_matching(campaign, *args, **kwargs)

    monkeypatch.setattr(triggers, "_matching", matching)
    activity_ids = _activities(2)

    evaluate_pending()

    assert TriggerCursor.objects.get().last_activity_id == max(activity_ids)
    for campaign in three_campaigns:
        campaign.refresh_from_db()
        if campaign.pk == broken.pk:
            assert _delivered(campaign) == set()
            assert campaign.is_paused and "its evaluation failed" in campaign.paused_reason
            assert "Error" in campaign.paused_reason  # the error's kind, in the reason
        else:
            assert _delivered(campaign) == set(activity_ids), campaign.name
            assert campaign.is_active and not campaign.paused_reason


def test_a_lost_connection_is_not_blamed_on_a_campaign(three_campaigns, monkeypatch):
    """When the campaign's savepoint itself cannot be rolled back (the connection is gone), the
    batch stops and is retried whole, rather than pausing a campaign for a failure not its own."""
    broken = three_campaigns[0]
    real_matching, real_rollback = triggers._matching, connection.savepoint_rollback
    failed: list[str] = []

    def matching(campaign, *args, **kwargs):
        if campaign.pk == broken.pk:
            raise DatabaseError("server closed the connection unexpectedly")
        return real_matching(campaign, *args, **kwargs)

    def rollback(sid):
        if not failed:  # the campaign's savepoint; the ones around it roll back as usual
            failed.append(sid)
            raise DatabaseError("no connection to the server")
        return real_rollback(sid)

    monkeypatch.setattr(triggers, "_matching", matching)
    monkeypatch.setattr(connection, "savepoint_rollback", rollback)
    _activities(1)
    with pytest.raises(DatabaseError, match="server closed"):
        evaluate_pending()
    assert failed
    assert not Campaign.objects.filter(paused_at__isnull=False).exists()
    assert TriggerCursor.objects.get().last_activity_id == 0


class _Sqlstate(Exception):
    """What psycopg's errors carry: the SQLSTATE of the failure."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


# Raised where the campaign's trigger query runs (inside its evaluation, as a real failure would
# be): none of them is the campaign's fault.
TRANSIENT: dict[str, tuple[BaseException, str | None]] = {
    "serialization": (OperationalError("could not serialize access"), "40001"),
    "deadlock": (DatabaseError("deadlock detected"), "40P01"),
    "statement-timeout": (OperationalError("canceling statement due to statement timeout"), "57014"),
    "cancel-as-database-error": (DatabaseError("canceling statement"), "57014"),
    "lock-timeout": (DatabaseError("canceling statement due to lock timeout"), "55P03"),
    "out-of-memory": (DatabaseError("out of memory"), "53200"),
    "disk-full": (DatabaseError("could not extend file"), "53100"),
    "connection": (DatabaseError("terminating connection"), "08006"),
    "any-operational": (OperationalError("server closed the connection unexpectedly"), None),
    "locked": (OperationalError("database is locked"), None),
    "time-limit": (SoftTimeLimitExceeded(), None),
}


def _raise(kind: str) -> None:
    error, sqlstate = TRANSIENT[kind]
    raise error from (_Sqlstate(sqlstate) if sqlstate else None)


def test_a_campaign_that_meets_a_transient_failure_every_time_is_paused_after_a_few_tries(
    three_campaigns, monkeypatch
):
    """A query that outlasts statement_timeout at every try is not the moment's: after
    TRANSIENT_TRIES tries in a row the campaign is paused, and the others decide the batch."""
    first, broken, third = three_campaigns
    real_matching = triggers._matching

    def matching(campaign, *args, **kwargs):
        if campaign.pk == broken.pk:
            _raise("statement-timeout")
        return real_matching(campaign, *args, **kwargs)

    monkeypatch.setattr(triggers, "_matching", matching)
    monkeypatch.setattr(triggers, "_transient_tries", {})
    activity_ids = _activities(1)
    for _ in range(triggers.TRANSIENT_TRIES - 1):
        with pytest.raises(DatabaseError):
            evaluate_pending()
        assert TriggerCursor.objects.get().last_activity_id == 0
    evaluate_pending()
    broken.refresh_from_db()
    assert broken.is_paused and f"failed {triggers.TRANSIENT_TRIES} times in a row" in broken.paused_reason
    assert "statement timeout" in broken.paused_reason
    assert _delivered(first) == _delivered(third) == set(activity_ids)
    assert TriggerCursor.objects.get().last_activity_id == max(activity_ids)


def test_two_campaigns_that_keep_failing_transiently_are_both_paused(three_campaigns, monkeypatch):
    """One campaign's failure never resets the other's count: both reach TRANSIENT_TRIES and
    the batch that pauses them both commits (before, each reset the other and neither paused)."""
    first, broken, third = three_campaigns
    real_matching = triggers._matching

    def matching(campaign, *args, **kwargs):
        if campaign.pk in (first.pk, broken.pk):
            _raise("statement-timeout")
        return real_matching(campaign, *args, **kwargs)

    monkeypatch.setattr(triggers, "_matching", matching)
    monkeypatch.setattr(triggers, "_transient_tries", {})
    activity_ids = _activities(1)
    for _ in range(2 * triggers.TRANSIENT_TRIES):
        try:
            evaluate_pending()
            break
        except DatabaseError:
            continue
    first.refresh_from_db()
    broken.refresh_from_db()
    assert first.is_paused and broken.is_paused
    assert _delivered(third) == set(activity_ids)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_campaign_queries_run_under_a_statement_timeout(three_campaigns, monkeypatch):
    """A query that never ends becomes a statement timeout the evaluator can count against its
    campaign, not the task's time limit, which is nobody's and would stop every campaign."""
    seen = []
    real_matching = triggers._matching

    def matching(campaign, *args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])
        return real_matching(campaign, *args, **kwargs)

    monkeypatch.setattr(triggers, "_matching", matching)
    _activities(1)
    evaluate_pending()
    assert seen and set(seen) == {"2min"}


@pytest.mark.parametrize("kind", list(TRANSIENT))
def test_a_transient_failure_retries_the_batch_instead_of_pausing(three_campaigns, monkeypatch, kind):
    """A deadlock, a timeout or cancel, no memory or disk, a lost or busy database, the task's
    time limit: nobody's campaign's fault. The batch is left undecided (the cursor does not move)
    and the next evaluation decides it; before the fix the campaign being evaluated was paused
    (and resuming it would have lost the activities in between)."""
    broken = three_campaigns[1]
    real_matches = triggers.activity_matches
    failures = [1]
    evaluating: list[int] = []
    real_matching = triggers._matching

    def matching(campaign, *args, **kwargs):
        evaluating[:] = [campaign.pk]
        return real_matching(campaign, *args, **kwargs)

    def activity_matches(*args, **kwargs):
        if evaluating == [broken.pk] and failures:
            failures.pop()
            _raise(kind)
        return real_matches(*args, **kwargs)

    monkeypatch.setattr(triggers, "_matching", matching)
    monkeypatch.setattr(triggers, "activity_matches", activity_matches)
    activity_ids = _activities(1)
    with pytest.raises((DatabaseError, SoftTimeLimitExceeded)):
        evaluate_pending()
    assert not Campaign.objects.filter(paused_at__isnull=False).exists()
    assert TriggerCursor.objects.get().last_activity_id == 0 and not Delivery.objects.exists()
    evaluate_pending()  # the retry
    for campaign in three_campaigns:
        campaign.refresh_from_db()
        assert campaign.is_active and _delivered(campaign) == set(activity_ids)


@pytest.fixture
def api_client(administrator):
    client = APIClient()
    client.force_login(administrator)
    return client


def test_a_numeric_comparison_on_a_custom_field_holding_text_neither_fails_nor_matches(three_campaigns):
    """The case from the review: on PostgreSQL the cast of the JSON text to numeric failed in the
    middle of the batch's transaction. Custom-field values are now cast only where they hold
    their type (smartlists.evaluate), so the campaign runs on: "not a number" is not above 5,
    and nothing is paused."""
    first, other, third = three_campaigns
    Campaign.objects.filter(pk=other.pk).update(
        triggers=[
            {
                "trigger": "added_to_opportunity",
                "constraints": [{"field": "Score__c", "operator": "greater_than", "value": 5}],
            }
        ]
    )
    role = ContactRoleFactory(opportunity__custom_fields={"Score__c": "not a number"})
    activity = ActivityFactory(person=role.person, opportunity=role.opportunity)

    evaluate_pending()

    assert _delivered(first) == _delivered(third) == {activity.pk}
    other.refresh_from_db()
    assert not other.is_paused and _delivered(other) == set()


@pytest.mark.parametrize("part", ["trigger-field", "trigger-constraint", "smart-list"])
def test_a_briefly_inactive_field_skips_its_campaign_without_pausing_it(three_campaigns, part):
    """A field describe briefly misses (or an FLS flip) is not the campaign's fault: the campaign
    is skipped for the batch, not paused; the cursor moves on and the others decide as usual. Its
    activities of that batch are never decided (as in Marketo); once the field is back, it
    decides the next ones without being switched on again. Before the fix it was paused."""
    first, broken, third = three_campaigns
    region = {"field": "Region__c", "operator": "is", "value": ["EMEA"]}
    definitions = {
        "trigger-field": {"triggers": [{"trigger": "opportunity_updated", "field": "Region__c"}]},
        "trigger-constraint": {"triggers": [{"trigger": "added_to_opportunity", "constraints": [region]}]},
        "smart-list": {"smart_list": {"filters": [{"filter": "has_opportunity", "constraints": [region]}]}},
    }
    Campaign.objects.filter(pk=broken.pk).update(**definitions[part])
    FieldDefinition.objects.filter(sobject="Opportunity", api_name="Region__c").update(is_active=False)
    while_inactive = _activities(2)

    evaluate_pending()

    assert TriggerCursor.objects.get().last_activity_id == max(while_inactive)
    assert _delivered(first) == _delivered(third) == set(while_inactive)
    broken.refresh_from_db()
    assert broken.is_active and not broken.is_paused and not broken.paused_reason
    assert _delivered(broken) == set()

    FieldDefinition.objects.filter(sobject="Opportunity", api_name="Region__c").update(is_active=True)
    Campaign.objects.filter(pk=broken.pk).update(
        triggers=[{"trigger": "added_to_opportunity"}], smart_list=None
    )
    after = _activities(1)
    evaluate_pending()
    assert _delivered(broken) == set(after)
