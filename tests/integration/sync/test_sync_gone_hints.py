"""Hints of hard deletes (issue P15): the ids of DELETE change events wait in `ChangeStream.gone_hints`
for the next cycle, which asks Salesforce for them and removes only the rows it no longer has. A
contact role deleted directly is a hard delete: without the hint, only a getDeleted minute window
or the daily id reconciliation finds it."""

from __future__ import annotations

import pytest

from opportunities.models import (
    Activity,
    ActivityType,
    ChangeStream,
    ContactRole,
    CycleTrigger,
    Opportunity,
    SyncCycle,
)
from opportunities.sync.wake import gone_hints_add
from tests.integration.sync.checks import activity_keys, assert_database_equals_org, ok_cycle, run_cycle
from tests.integration.sync.test_cdc_listener import api, listener_env, listening, wait_healthy, wait_synced
from tests.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROLE = "OpportunityContactRole"
__all__ = ["api"]  # the fixture, from the listener's tests


def live_role_ids(count: int) -> list[str]:
    roles = ContactRole.objects.filter(is_deleted=False, person__isnull=False, opportunity__isnull=False)
    return list(roles.order_by("sf_id").values_list("sf_id", flat=True)[:count])


def hints_waiting() -> dict:
    stream = ChangeStream.objects.first()
    return stream.gone_hints if stream is not None else {}


def test_a_directly_deleted_role_goes_in_the_next_cycle_and_a_role_still_there_stays(org, synced_settings):
    org.generate(opportunities=12, people=15, seed=4)
    ok_cycle()
    deleted, still_there = live_role_ids(2)
    org.delete(ROLE, deleted)
    # Without the hint no cycle sees it yet: no window shows a hard delete, and the getDeleted
    # window (whole minutes, every SALESFORCE_DELETED_INTERVAL) is not due right after the first load.
    ok_cycle()
    assert ContactRole.objects.get(sf_id=deleted).is_deleted is False

    # A DELETE event for each, and garbage that must never reach a SOQL literal.
    gone_hints_add({ROLE: [deleted, still_there, "x') OR Id != ('"]})
    ok_cycle()
    assert ContactRole.objects.get(sf_id=deleted).is_deleted is True
    assert ContactRole.objects.get(sf_id=still_there).is_deleted is False  # the event alone removes nothing
    removed = Activity.objects.filter(
        activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY, is_initial_load=False
    )
    assert removed.count() == 1
    assert hints_waiting() == {}
    assert_database_equals_org(org)


def test_a_soft_deleted_opportunity_with_a_hint_is_removed_once(org, synced_settings):
    org.generate(opportunities=8, people=10, seed=5)
    ok_cycle()
    opportunity = Opportunity.objects.filter(contact_roles__person__isnull=False).first()
    assert opportunity is not None
    org.delete("Opportunity", opportunity.sf_id)
    gone_hints_add({"Opportunity": [opportunity.sf_id]})
    ok_cycle()
    ok_cycle()
    assert Opportunity.objects.get(pk=opportunity.pk).is_deleted is True
    keys = activity_keys()
    assert len(keys) == len(set(keys)), "an activity was recorded twice"
    assert_database_equals_org(org)


def test_hints_whose_check_was_refused_wait_for_the_next_cycle_and_the_object_still_syncs(
    org, synced_settings
):
    org.generate(opportunities=8, people=10, seed=6)
    ok_cycle()
    (deleted,) = live_role_ids(1)
    org.delete(ROLE, deleted)
    gone_hints_add({ROLE: [deleted]})
    # The check's query (the cycle's only queryAll outside its Composite request) is refused.
    org.faults(
        error={
            "status": 400,
            "error_code": "MALFORMED_QUERY",
            "message": "refused",
            "path_contains": "queryAll",
        }
    )
    new_role = org.create(
        ROLE,
        {"OpportunityId": Opportunity.objects.first().sf_id, "ContactId": org.records("Contact")[0]["Id"]},
    )[0]
    cycle = run_cycle()
    assert cycle.error_message == ""  # the refused check is not the object's failure
    assert ContactRole.objects.filter(sf_id=new_role).exists()  # its window was applied
    assert hints_waiting() == {ROLE: [deleted]}
    assert ContactRole.objects.get(sf_id=deleted).is_deleted is False
    ok_cycle()
    assert ContactRole.objects.get(sf_id=deleted).is_deleted is True
    assert hints_waiting() == {}
    assert_database_equals_org(org)


def test_a_role_deleted_while_the_listener_runs_goes_through_the_woken_cycle(org, tmp_path, api):
    """End to end: the emulator's DELETE event reaches the listener, whose hint the woken cycle
    checks. getDeleted is kept out of the way (an hour's interval) and no beat runs."""
    org.generate(opportunities=10, people=12, seed=7)
    log = tmp_path / "listener.log"
    with listening(listener_env(org, tmp_path, SALESFORCE_DELETED_INTERVAL="3600"), log):
        wait_healthy(api, log)
        wait_synced(org, log)
        (deleted,) = live_role_ids(1)
        org.delete(ROLE, deleted)
        wait_until(
            lambda: ContactRole.objects.get(sf_id=deleted).is_deleted,
            timeout=60,
            what="the deleted role gone",
            log=log,
        )
    assert set(SyncCycle.objects.values_list("trigger", flat=True)) == {CycleTrigger.WAKE}
    assert_database_equals_org(org)
