"""/api/v1/opportunities/, /contact-roles/, /activities/ and /sync/status/."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from oppsync_site.api.common import ERROR_RESPONSES, EstimatedPagination, read_only_schema
from oppsync_site.api.permissions import RolePermission
from oppsync_site.models import WorkerHeartbeat

from ..models import (
    Activity,
    ContactRole,
    Opportunity,
    SetAsideRecord,
    SyncCycle,
    SyncObjectRun,
    SyncState,
)
from ..selectors import (
    ChangeStreamStatus,
    ObjectSyncStatus,
    activity_list,
    change_stream_status,
    contact_role_list,
    last_cycles,
    opportunity_list,
    sync_status,
)
from ..sync.schedule import effective_interval
from ..sync.set_aside import set_aside_listing
from .filters import ActivityFilter, ContactRoleFilter, OpportunityFilter
from .mixins import SyncedDataContextMixin
from .serializers import ActivitySerializer, ContactRoleSerializer, OpportunitySerializer


@read_only_schema("opportunities", "opportunity", OpportunitySerializer)
class OpportunityViewSet(SyncedDataContextMixin, viewsets.ReadOnlyModelViewSet[Opportunity]):
    """Opportunities not deleted in Salesforce. Amounts are in the subscription's default currency."""

    pagination_class = EstimatedPagination
    queryset = opportunity_list()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter


@read_only_schema("contact roles", "contact role", ContactRoleSerializer)
class ContactRoleViewSet(viewsets.ReadOnlyModelViewSet[ContactRole]):
    """Live contact roles: the links between people and opportunities."""

    pagination_class = EstimatedPagination
    queryset = contact_role_list()
    serializer_class = ContactRoleSerializer
    filterset_class = ContactRoleFilter


@read_only_schema("activities", "activity", ActivitySerializer)
class ActivityViewSet(viewsets.ReadOnlyModelViewSet[Activity]):
    """What the sync recorded: added to, removed from, and updates of people's opportunities."""

    pagination_class = EstimatedPagination
    queryset = activity_list()
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter


def _run_json(run: SyncObjectRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "cycle": run.cycle_id,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "status": run.status,
        "new": run.created_count,
        "updated": run.updated_count,
        "deleted": run.deleted_count,
        "skipped": run.skipped_count,
        "failed": run.failed_count,
        "api_calls": run.api_calls,
        "duration_seconds": run.duration_seconds,
        "error": run.error_message,
    }


def _object_json(item: ObjectSyncStatus) -> dict[str, Any]:
    state = item.state
    return {
        "sobject": item.sobject,
        "watermark": state.watermark if state else None,
        "deleted_checked_until": state.deleted_checked_until if state else None,
        "last_reconciled_at": state.last_reconciled_at if state else None,
        "initial_load_completed_at": state.initial_load_completed_at if state else None,
        "last_run": _run_json(item.last_run),
        # One object's failure is that object's: why it is waiting, and until when.
        "last_error": (state.last_error or None) if state else None,
        "retry_after": state.retry_after if state else None,
        "unreadable_fields": sorted(state.unreadable_paths) if state else [],
    }


# Records set aside listed by the API (the longest waiting first); `set_aside_count` counts all.
SET_ASIDE_LISTED = 1000


def _set_aside_json(row: SetAsideRecord) -> dict[str, Any]:
    return {
        "sobject": row.sobject,
        "sf_id": row.sf_id,
        "reason": row.reason,
        "attempts": row.attempts,
        "first_failed_at": row.first_failed_at,
        "last_tried_at": row.last_tried_at,
        "retry_after": row.retry_after,
    }


def _cycle_json(cycle: SyncCycle) -> dict[str, Any]:
    return {
        "id": cycle.pk,
        "started_at": cycle.started_at,
        "ended_at": cycle.ended_at,
        "status": cycle.status,
        "api_calls": cycle.api_calls,
        "is_initial_load": cycle.is_initial_load,
        "trigger": cycle.trigger,
        "error": cycle.error_message,
        "duration_seconds": cycle.duration_seconds,
    }


SYNC_STATUS_SCHEMA = inline_serializer(
    "SyncStatus",
    {
        "objects": serializers.ListField(child=serializers.DictField()),
        "cycles": serializers.ListField(child=serializers.DictField()),
        "api_usage": serializers.DictField(),
        "interval_seconds": serializers.FloatField(),
        "workers": serializers.ListField(child=serializers.DictField()),
        "set_aside": serializers.ListField(child=serializers.DictField()),
        "set_aside_count": serializers.IntegerField(),
        "change_stream": serializers.DictField(),
    },
)


class SyncStatusView(APIView):
    """Sync health for Administrators: per object, its last run, counts and watermark; the last
    cycles; Salesforce API calls used of the daily limit; the records set aside (object, Salesforce
    id, reason, attempts, next retry); the change stream (state, reason when down, last event and
    keepalive, deliveries and wake-ups today) and the poll cadence with its reason. There is no endpoint that starts a sync."""

    permission_classes = [RolePermission]
    read_permission = "opportunities.view_syncstate"
    queryset = SyncState.objects.all()

    @extend_schema(summary="Sync status", responses={200: SYNC_STATUS_SCHEMA, **ERROR_RESPONSES})
    def get(self, request: Request) -> Response:
        cycles = list(last_cycles())
        latest_usage = next((c for c in cycles if c.api_usage_max), None)
        set_aside, set_aside_count = set_aside_listing(SET_ASIDE_LISTED)
        return Response(
            {
                "objects": [_object_json(item) for item in sync_status()],
                "cycles": [_cycle_json(c) for c in cycles],
                "api_usage": {
                    "used": latest_usage.api_usage_used if latest_usage else None,
                    "max": latest_usage.api_usage_max if latest_usage else None,
                },
                "interval_seconds": effective_interval(),
                "workers": [
                    {"hostname": w.hostname, "last_beat_at": w.last_beat_at}
                    for w in WorkerHeartbeat.objects.order_by("hostname")
                ],
                # Records the sync could not store: retried by id until they apply.
                "set_aside": [_set_aside_json(row) for row in set_aside],
                "set_aside_count": set_aside_count,
                # The change-event wake-up (P15): the stream's state in words and the poll cadence.
                "change_stream": _change_stream_json(change_stream_status()),
            }
        )


def _change_stream_json(stream: ChangeStreamStatus) -> dict[str, Any]:
    return {
        "mode": stream.mode,
        "state": stream.state,
        "headline": stream.headline,
        "reason": stream.down_reason,
        "down_since": stream.down_since,
        "subscribed_since": stream.subscribed_since,
        "last_event_at": stream.last_event_at,
        "last_keepalive_at": stream.last_keepalive_at,
        "listeners": stream.listeners,
        "topics": stream.topics,
        "event_deliveries_today": stream.events_today,
        "wakeups_today": stream.wakeups_today,
        "woken_cycles_per_minute": stream.woken_cycles_per_minute,
        "poll_cadence": {
            "seconds": stream.interval_seconds,
            "base_seconds": stream.cadence_seconds,
            "reason": stream.cadence_reason,
        },
    }
