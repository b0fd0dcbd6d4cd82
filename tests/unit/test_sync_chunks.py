"""P7 point 8: mass deletes apply in bounded chunks (SQLite's variable limit), each fenced."""

from __future__ import annotations

import datetime as dt

import pytest

from opportunities.models import Activity, ActivityType, ContactRole, SyncCycle
from opportunities.sync import apply
from opportunities.sync.engine import SyncEngine
from opportunities.sync.engine.deletes import rows_gone
from tests.factories import ContactRoleFactory

pytestmark = pytest.mark.django_db


def test_no_giant_rewrites_a_reconcile_that_finds_300_000_rows_gone_applies_in_chunks():
    roles = [ContactRoleFactory() for _ in range(3)]
    gone_at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    # Beyond SQLite's variable limit (250,000 in Debian's build, 32,766 upstream); most are unknown here.
    deleted = {f"00K{n:015d}": gone_at for n in range(300_000)}
    deleted.update({role.sf_id: gone_at for role in roles})
    engine = SyncEngine(client=None)  # marking rows gone calls no API
    engine.lock.use_heartbeat = False
    assert engine.lock.acquire()
    cycle = SyncCycle.objects.create(started_at=gone_at)
    context = apply.ApplyContext(cycle=cycle, is_initial_load=False, counters=apply.Counters())
    try:
        rows_gone(engine.lock, "OpportunityContactRole", deleted, context)
    finally:
        engine.lock.release()
    assert ContactRole.objects.filter(is_deleted=True).count() == 3
    removed = Activity.objects.filter(activity_type=ActivityType.REMOVED_FROM_OPPORTUNITY)
    assert set(removed.values_list("occurred_at", flat=True)) == {gone_at}
    assert removed.count() == 3 and context.counters.deleted == 3
