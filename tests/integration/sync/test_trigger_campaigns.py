"""Trigger campaigns end to end, in this process: a change in the emulated org goes through the
real sync (HTTPS, simple-salesforce), trigger evaluation and a real HTTP webhook to a receiver
the test starts. The Celery version (worker processes, kill -9) is test_trigger_workers.py."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignMember, Delivery, DeliveryStatus
from campaigns.payload import signature_verify
from campaigns.receiver import Receiver
from campaigns.services import campaign_save
from campaigns.triggers import evaluate_pending
from campaigns.webhooks import attempt
from opportunities.models import Activity, ActivityType, Opportunity
from people.models import Person
from tests.integration.sync.checks import ok_cycle

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
SECRET = "whsec_test_secret_0123456789"


@pytest.fixture
def receiver():
    running = Receiver(secret=SECRET).start()
    yield running
    running.stop()


def campaign(receiver: Receiver, triggers: list[dict], **data) -> Campaign:
    saved, _ = campaign_save(
        campaign=None,
        data={
            "name": data.pop("name", "Campaign"),
            "triggers": triggers,
            "webhook": {"url": receiver.url, "secret": SECRET},
            **data,
        },
    )
    return saved


def decide_and_deliver() -> list[int]:
    """What the triggers and webhooks queues do, run here: decide, then attempt every delivery
    until it succeeds or fails for good."""
    decided: list[int] = []
    evaluate_pending(on_decided=decided.extend)
    for delivery_id in decided:
        deadline = time.monotonic() + 60
        while Delivery.objects.get(pk=delivery_id).status == DeliveryStatus.PENDING:
            assert time.monotonic() < deadline, "a delivery never finished"
            if attempt(delivery_id) is not None:
                Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())
    return decided


def contact_with_role(org, deal: str, last_name: str, **role) -> str:
    [contact] = org.create("Contact", {"LastName": last_name, "Email": f"{last_name.lower()}@example.com"})
    org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact, **role})
    return contact


def new_deal(org, name: str, amount: float, stage: str = "Prospecting") -> str:
    [deal] = org.create(
        "Opportunity", {"Name": name, "StageName": stage, "CloseDate": "2031-01-01", "Amount": amount}
    )
    return deal


def test_a_change_in_salesforce_reaches_the_receiver_signed_and_only_where_it_matches(
    org, synced_settings, receiver
):
    org.generate(opportunities=15, people=12, seed=5)
    ok_cycle()  # the initial load: its activities trigger nothing
    assert Activity.objects.filter(is_initial_load=True).exists()
    big = campaign(
        receiver,
        [
            {
                "trigger": "added_to_opportunity",
                "constraints": [{"field": "Amount", "operator": "at_least", "value": 5000}],
            }
        ],
        name="Big deals",
    )
    won = campaign(
        receiver,
        [
            {
                "trigger": "opportunity_updated",
                "field": "StageName",
                "constraints": [{"field": "new_value", "operator": "is", "value": ["Closed Won"]}],
            }
        ],
        name="Won",
    )
    nobody = campaign(
        receiver,
        [{"trigger": "added_to_opportunity"}],
        smart_list={
            "filters": [
                {
                    "filter": "person_field",
                    "field": "email",
                    "operator": "contains",
                    "value": "@nowhere.invalid",
                }
            ]
        },
        name="Smart list matches nobody",
    )
    assert decide_and_deliver() == [] and receiver.received == []  # the initial load sent nothing

    large = new_deal(org, "Large", 8000)
    small = new_deal(org, "Small", 100)
    ann = contact_with_role(org, large, "Ann", Role="Decision Maker", IsPrimary=True)
    contact_with_role(org, small, "Bob")
    existing = Opportunity.objects.filter(contact_roles__isnull=False, is_closed=False).distinct().first()
    org.update("Opportunity", {"Id": existing.sf_id, "StageName": "Closed Won"})
    ok_cycle()
    decide_and_deliver()

    by_campaign: dict[int, list] = {}
    for received in receiver.received:
        assert received.verified and not received.repeat
        by_campaign.setdefault(received.body["campaign"]["id"], []).append(received.body)
    assert nobody.pk not in by_campaign  # the smart list matched nobody
    [big_body] = by_campaign[big.pk]  # the small deal did not meet Amount ≥ 5000
    assert big_body["activity"]["type"] == ActivityType.ADDED_TO_OPPORTUNITY
    assert big_body["person"]["sf_contact_id"] == ann and big_body["person"]["email"] == "ann@example.com"
    assert big_body["opportunity"]["name"] == "Large" and big_body["opportunity"]["amount"] == "8000.00"
    assert big_body["activity"]["role"] == "Decision Maker" and big_body["activity"]["is_primary"] is True
    linked = set(
        existing.contact_roles.filter(is_deleted=False).values_list("person__sf_contact_id", flat=True)
    )
    won_bodies = by_campaign[won.pk]
    assert {b["person"]["sf_contact_id"] for b in won_bodies} == linked
    assert {(b["activity"]["field"], b["activity"]["new_value"]) for b in won_bodies} == {
        ("StageName", "Closed Won")
    }
    # The headers carry the key and a signature a receiver can check (and a tampered body fails).
    first = receiver.received[0]
    assert first.headers["OppSync-Idempotency-Key"] == first.body["id"]
    header = first.headers["OppSync-Signature"]
    assert not signature_verify(SECRET, header, b'{"id":"forged"}', now=int(time.time()))
    assert not signature_verify(SECRET, header, b"", now=int(time.time()) + 3600)  # a replay, late

    ok_cycle()
    assert decide_and_deliver() == []  # nothing changed: nothing sent again


def test_each_qualification_rule_behaves_as_stated(org, synced_settings, receiver):
    [contact] = org.create("Contact", {"LastName": "Quinn", "Email": "quinn@example.com"})
    ok_cycle()
    rules = {
        "every_time": campaign(receiver, [{"trigger": "added_to_opportunity"}], qualification="every_time"),
        "once": campaign(receiver, [{"trigger": "added_to_opportunity"}], qualification="once"),
        "every_7_days": campaign(
            receiver, [{"trigger": "added_to_opportunity"}], qualification={"once_every_days": 7}
        ),
    }

    def add_to_new_deal(n: int) -> None:
        deal = new_deal(org, f"Deal {n}", 100)
        org.create("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact})
        ok_cycle()
        decide_and_deliver()

    def sent() -> dict[str, int]:
        return {name: Delivery.objects.filter(campaign=c).count() for name, c in rules.items()}

    add_to_new_deal(1)
    add_to_new_deal(2)
    assert sent() == {"every_time": 2, "once": 1, "every_7_days": 1}
    # Eight days later the N-day rule lets the person run again; "once" never does.
    person = Person.objects.get(sf_contact_id=contact)
    CampaignMember.objects.filter(person=person).update(last_run_at=timezone.now() - dt.timedelta(days=8))
    add_to_new_deal(3)
    assert sent() == {"every_time": 3, "once": 1, "every_7_days": 2}
    add_to_new_deal(4)
    assert sent() == {"every_time": 4, "once": 1, "every_7_days": 2}
    assert len(receiver.received) == 7 and len(receiver.unique()) == 7


def test_a_campaign_switched_on_later_does_not_replay_history_and_inactive_ones_send_nothing(
    org, synced_settings, receiver
):
    [contact] = org.create("Contact", {"LastName": "Hale"})
    ok_cycle()
    paused = campaign(receiver, [{"trigger": "added_to_opportunity"}], is_active=False)
    org.create("OpportunityContactRole", {"OpportunityId": new_deal(org, "Before", 1), "ContactId": contact})
    ok_cycle()
    assert decide_and_deliver() == []
    campaign_save(campaign=paused, data={"is_active": True})
    assert decide_and_deliver() == []  # what happened while it was off is not replayed
    org.create("OpportunityContactRole", {"OpportunityId": new_deal(org, "After", 1), "ContactId": contact})
    ok_cycle()
    assert len(decide_and_deliver()) == 1
    assert receiver.received[0].body["opportunity"]["name"] == "After"


def test_a_receiver_that_fails_three_times_gets_four_attempts_all_logged(
    org, synced_settings, receiver, settings
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    [contact] = org.create("Contact", {"LastName": "Fay"})
    ok_cycle()
    flaky = campaign(receiver, [{"trigger": "added_to_opportunity"}])
    org.create("OpportunityContactRole", {"OpportunityId": new_deal(org, "Retry", 1), "ContactId": contact})
    ok_cycle()
    receiver.fail_next = 3
    [delivery_id] = decide_and_deliver()
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.campaign, delivery.status, delivery.attempt_count) == (
        flaky,
        DeliveryStatus.SUCCEEDED,
        4,
    )
    codes = list(delivery.attempts.values_list("status_code", "error"))
    assert codes == [(500, "HTTP 500"), (500, "HTTP 500"), (500, "HTTP 500"), (200, "")]
    assert all(a.response_excerpt for a in delivery.attempts.all())
    assert receiver.requests == 4 and len(receiver.received) == 1


def test_a_receiver_that_hangs_is_cut_off_and_the_delivery_fails_after_its_attempts(
    org, synced_settings, receiver, settings
):
    settings.WEBHOOK_READ_TIMEOUT = 0.5
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    [contact] = org.create("Contact", {"LastName": "Hang"})
    ok_cycle()
    campaign(receiver, [{"trigger": "added_to_opportunity"}])
    org.create("OpportunityContactRole", {"OpportunityId": new_deal(org, "Slow", 1), "ContactId": contact})
    ok_cycle()
    receiver.hang_seconds = 5
    started = time.monotonic()
    [delivery_id] = decide_and_deliver()
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 2
    assert list(delivery.attempts.values_list("error", flat=True)) == ["timed out", "timed out"]
    assert all(a.ms < 4000 for a in delivery.attempts.all())
    assert time.monotonic() - started < 9  # two attempts, each cut off long before the 5 s hang ends
