"""Old sync cycle records are pruned; what they recorded stays."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opportunities.models import Activity, SyncCycle, SyncObjectRun, SyncStatus
from opportunities.sync.service import sync_history_prune
from opportunities.sync.tasks import prune_sync_history
from tests.factories import ActivityFactory


def _cycle(days_ago: float, status: str = SyncStatus.SUCCEEDED) -> SyncCycle:
    started = timezone.now() - dt.timedelta(days=days_ago)
    cycle = SyncCycle.objects.create(started_at=started, ended_at=started, status=status)
    SyncObjectRun.objects.create(cycle=cycle, sobject="Opportunity", started_at=started)
    return cycle


@pytest.mark.django_db
def test_no_giant_rewrites_cycles_older_than_the_history_are_pruned_and_activities_stay(settings):
    settings.SYNC_HISTORY_DAYS = 14
    old, recent = _cycle(20), _cycle(1)
    running_long_ago = _cycle(30, SyncStatus.RUNNING)
    activity = ActivityFactory(sync_cycle=old)

    with CaptureQueriesContext(connection) as queries:
        assert sync_history_prune() == 1
    # No giant rewrites: the activities are not touched at all.
    assert not [q["sql"] for q in queries if "opportunities_activity" in q["sql"]]

    assert set(SyncCycle.objects.values_list("pk", flat=True)) == {recent.pk, running_long_ago.pk}
    assert not SyncObjectRun.objects.filter(cycle_id=old.pk).exists()
    activity.refresh_from_db()
    assert activity.sync_cycle_id == old.pk and Activity.objects.filter(pk=activity.pk).exists()
    assert prune_sync_history() == 0  # the beat task calls the same service
