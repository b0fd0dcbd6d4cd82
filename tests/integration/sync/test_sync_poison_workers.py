"""Issue P11, cases 2 and 3, end to end: the emulated org over HTTPS, a real Celery worker with
beat on Redis, and (case 3) a trigger campaign delivering to a real webhook receiver."""

from __future__ import annotations

import pytest

from campaigns.models import Delivery, DeliveryStatus
from campaigns.receiver import Receiver
from campaigns.services import campaign_save
from opportunities.models import (
    Activity,
    ActivityType,
    ContactRole,
    Opportunity,
    SetAsideRecord,
    SyncCycle,
    SyncState,
    SyncStatus,
)
from people.models import Person
from tests.integration.sync.checks import (
    activity_keys,
    assert_database_equals_org,
    ok_cycle,
    wait_for_stopped_workers_lease,
)
from tests.integration.sync.test_sync_celery import start_worker, worker_env
from tests.processes import stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
SECRET = "whsec_poison_test_secret_0123"


def test_two_leads_converted_into_one_contact_the_user_cannot_see_sync_on_in_a_worker(
    org, synced_settings, tmp_path
):
    """Case 2: both leads would claim the invisible contact's id (an IntegrityError that stopped
    every cycle before Opportunity and OpportunityContactRole). One person holds the contact, the
    other lead's person is merged into it, and the worker's cycles go on to the roles."""
    first, second = org.create(
        "Lead",
        {"LastName": "Lee", "Company": "First", "Email": "lee@first.example"},
        {"LastName": "Lee", "Company": "Second", "Email": "lee@second.example"},
    )
    [contact] = org.create("Contact", {"LastName": "Lee"})
    org.set_visible("Contact", [contact], False)
    [deal] = org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2031-01-01"}
    )
    [role] = org.create(
        "OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact, "Role": "Buyer"}
    )
    org.convert_lead(first, contact_id=contact, create_opportunity=False)
    org.convert_lead(second, contact_id=contact, create_opportunity=False)
    log = tmp_path / "worker.log"
    worker = start_worker(worker_env(org, tmp_path, "redis"), log)
    try:
        wait_until(
            lambda: (
                ContactRole.objects.filter(
                    sf_id=role, person__isnull=False, opportunity__isnull=False
                ).exists()
                and SyncCycle.objects.filter(status=SyncStatus.SUCCEEDED).exists()
            ),
            timeout=90,
            what="the role linked to the converted leads' person",
            log=log,
        )
    finally:
        stop(worker)
    assert not SyncCycle.objects.filter(status=SyncStatus.FAILED).exists()
    person = Person.objects.get(sf_contact_id=contact)
    other = Person.objects.get(sf_lead_id__in=[first, second], sf_contact_id=None)
    assert {person.sf_lead_id, other.sf_lead_id} == {first, second}
    assert other.merged_into == person  # a merge loser: out of every smart list
    assert ContactRole.objects.get(sf_id=role).person == person
    added = Activity.objects.filter(activity_type=ActivityType.ADDED_TO_OPPORTUNITY)
    assert list(added.values_list("person", flat=True)) == [person.pk]
    assert not SetAsideRecord.objects.exists()

    # The re-reads (lookback, reconcile) change nothing: no flip of the lead ids, nothing twice.
    wait_for_stopped_workers_lease()
    ok_cycle()
    ok_cycle(reconcile=True)
    assert Person.objects.get(sf_contact_id=contact).sf_lead_id == person.sf_lead_id
    assert Person.objects.get(pk=other.pk).merged_into == person
    keys = activity_keys()
    assert len(keys) == len(set(keys))
    assert_database_equals_org(org)


def test_with_lead_unreadable_a_new_role_is_live_news_and_its_trigger_fires_in_workers(
    org, synced_settings, tmp_path
):
    """Case 3: Lead never finishes its first load (the user cannot read it). "Initial" is per
    object: a new contact role on an opportunity loaded long ago records a live Added activity,
    the worker's trigger campaign delivers it, and the cycles are not counted as first loads."""
    org.generate(opportunities=12, people=10, seed=31)
    org.faults(
        error={
            "status": 404,
            "error_code": "NOT_FOUND",
            "message": "The requested resource does not exist",
            "path_contains": "sobjects/Lead/describe",
            "in_composite": True,
            "times": 100_000,
        }
    )
    receiver = Receiver(secret=SECRET).start()
    env = worker_env(
        org,
        tmp_path,
        "redis",
        TRIGGERS_DISPATCH="true",
        WEBHOOK_SWEEP_INTERVAL="1",
        WEBHOOK_CONNECT_TIMEOUT="1",
        WEBHOOK_READ_TIMEOUT="5",
        WEBHOOK_RETRY_BASE_SECONDS="0.2",
    )
    log = tmp_path / "worker.log"
    worker = start_worker(env, log, queues="sync,default,triggers,webhooks")
    try:
        wait_until(
            lambda: (
                Opportunity.objects.count() == 12
                and SyncState.objects.filter(
                    sobject="OpportunityContactRole", initial_load_completed_at__isnull=False
                ).exists()
            ),
            timeout=90,
            what="the first load of everything but Lead",
            log=log,
        )
        campaign_save(
            campaign=None,
            data={
                "name": "Every new buyer",
                "triggers": [{"trigger": "added_to_opportunity", "constraints": []}],
                "webhook": {"url": receiver.url, "secret": SECRET},
            },
        )
        deal = Opportunity.objects.order_by("sf_id").first()
        assert deal is not None
        [contact] = org.create("Contact", {"LastName": "Newcomer", "Email": "new@example.com"})
        org.create(
            "OpportunityContactRole",
            {"OpportunityId": deal.sf_id, "ContactId": contact, "Role": "Economic Buyer"},
        )
        wait_until(
            lambda: Delivery.objects.filter(
                status=DeliveryStatus.SUCCEEDED, activity__person__sf_contact_id=contact
            ).exists(),
            timeout=90,
            what="the trigger's webhook for the new role",
            log=log,
        )
    finally:
        stop(worker)
        receiver.stop()
    lead = SyncState.objects.get(sobject="Lead")
    assert lead.initial_load_completed_at is None and "NOT_FOUND" in lead.last_error
    added = Activity.objects.get(
        activity_type=ActivityType.ADDED_TO_OPPORTUNITY, person__sf_contact_id=contact
    )
    assert not added.is_initial_load
    assert receiver.received[-1].body["person"]["sf_contact_id"] == contact
    # Only the first cycle loaded anything for the first time; the later ones are steady cycles
    # (the budget stretches the interval by their cost, not by a first load's).
    first_cycle = SyncCycle.objects.order_by("started_at").first()
    assert first_cycle is not None and first_cycle.is_initial_load
    assert not SyncCycle.objects.exclude(pk=first_cycle.pk).filter(is_initial_load=True).exists()
