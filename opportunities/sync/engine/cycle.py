"""`SyncEngine`: a cycle's record and outcome around its phases, which `_phases` runs in order."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from ...models import Activity, CycleTrigger, SyncCycle, SyncObjectRun, SyncState, SyncStatus
from ...salesforce.client import SalesforceClient
from ...salesforce.exceptions import SalesforceError, SalesforceQuotaExceeded
from ...signals import activities_recorded
from .. import set_aside, wake
from ..lock import SyncLeaseLost, SyncLock
from . import bookkeeping, composite, deletes, describe, retry, window
from .composite import Answers, ObjectPlan
from .context import CycleRun, Progress, quota_guard, within_quota

logger = logging.getLogger(__name__)


class SyncEngine:
    """Runs sync cycles, one at a time across every worker and machine (the lease, `lock`)."""

    def __init__(self, client: SalesforceClient, *, progress: Progress | None = None) -> None:
        self.client = client
        self.progress = progress
        self.lock = SyncLock()

    def run_cycle(
        self,
        *,
        reconcile: bool = False,
        always_describe: bool = False,
        trigger: str = CycleTrigger.POLL,
        claim: Callable[[], bool] | None = None,
    ) -> SyncCycle | None:
        """Run one cycle; None when another cycle holds the lease, or when `claim` (called once the
        lease is held, before the cycle is recorded: the change-event wake-up's check, `wake.py`)
        says no. `reconcile`: every object's ids are compared too; `always_describe`: every object
        is described whether or not its metadata changed (the operator's command asks for both).
        `trigger`: what started the cycle, for the status page and the wake-up budget."""
        if not self.lock.acquire():
            logger.info("Another sync cycle is running; this one stands down.")
            return None
        try:
            wanted = claim is None or claim()
        except BaseException:
            self.lock.release()
            raise
        if not wanted:
            self.lock.release()
            return None
        cycle = SyncCycle.objects.create(started_at=timezone.now(), trigger=trigger)
        # Holding the lock means no other cycle runs: one still marked running died with its worker.
        SyncCycle.objects.filter(status=SyncStatus.RUNNING).exclude(pk=cycle.pk).update(
            status=SyncStatus.FAILED, error_message="Abandoned: the worker running this cycle stopped."
        )
        calls_before = self.client.calls
        self.client.before_next_page = lambda: within_quota(self.client)
        try:
            quota_guard(self.client)
            failures = self._phases(cycle, reconcile=reconcile, always_describe=always_describe)
            cycle.status, cycle.error_message = bookkeeping.cycle_outcome(failures)
        except SalesforceQuotaExceeded as error:
            cycle.status, cycle.error_message = SyncStatus.PAUSED, str(error)
        except SyncLeaseLost as error:
            cycle.status, cycle.error_message = SyncStatus.FAILED, str(error)
            logger.warning("Sync cycle %s stopped: %s", cycle.pk, error)
        except SoftTimeLimitExceeded:
            # The hard limit kills the worker soon: end FAILED now, releasing the lease, instead of
            # leaving the lease held and the runs RUNNING. The watermarks of what committed hold.
            cycle.status = SyncStatus.FAILED
            cycle.error_message = (
                "Stopped at the task's soft time limit (CELERY_TASK_SOFT_TIME_LIMIT); what was "
                "applied is kept and the next cycle carries on from there."
            )
            logger.warning("Sync cycle %s stopped at the soft time limit", cycle.pk)
        except SalesforceError as error:
            cycle.status, cycle.error_message = SyncStatus.FAILED, str(error)
            logger.warning("Sync cycle %s failed: %s", cycle.pk, error)
        except Exception as error:
            cycle.status = SyncStatus.FAILED
            cycle.error_message = (
                f"Internal error ({type(error).__name__}: {error}); details are in the worker log."
            )
            logger.exception("Sync cycle %s failed", cycle.pk)
        finally:
            self.client.before_next_page = None
            cycle.ended_at = timezone.now()
            cycle.api_calls = self.client.calls - calls_before
            if self.client.api_usage:
                cycle.api_usage_used, cycle.api_usage_max = self.client.api_usage
            cycle.save()
            SyncObjectRun.objects.filter(cycle=cycle, status=SyncStatus.RUNNING).update(
                status=cycle.status, ended_at=cycle.ended_at, error_message=cycle.error_message[:2000]
            )
            self.lock.release()
        if Activity.objects.filter(sync_cycle=cycle, is_initial_load=False).exists():
            activities_recorded.send(sender=type(self), cycle=cycle)
        return cycle

    def _phases(self, cycle: SyncCycle, *, reconcile: bool, always_describe: bool) -> dict[str, str]:
        """The cycle's phases, in order (the package docstring tells them); returns the objects
        that failed, with why."""
        run = CycleRun(
            client=self.client,
            lock=self.lock,
            cycle=cycle,
            now=timezone.now(),
            progress=self.progress,
            set_aside_objects=set_aside.objects_with_set_aside(),
            always_describe=always_describe,
        )
        # Bookkeeping: whose turn it is. Describe: who was never described (a call of its own).
        states = bookkeeping.objects_due(run.now)
        first = describe.first_describes(run, states)
        states = {s: state for s, state in states.items() if s not in run.failures}
        bookkeeping.first_load_mark(cycle, states)
        # The one Composite request; the describes that rode along in it (a 304 for each object
        # whose metadata did not change) are stored first.
        plan = composite.cycle_plan(run, states, described=first.objects)
        answers = plan.send(run.client)
        due = describe.answers_store(run, states, plan.describing(), answers.describe, plan.org_now)
        backfills = {**first.backfills, **due.backfills}
        # Window, apply and deletes, object by object. Only the object whose deletes Salesforce
        # could not list is reconciled for it: a refusal for Lead never re-reads two million roles.
        to_reconcile = set(states) if reconcile else set()
        # Ids of DELETE events: checked by the object's turn; what no turn checked (the object
        # failed or was not due, the cycle stopped) goes back for the next cycle.
        hints = wake.gone_hints_take()
        try:
            for object_plan in plan.objects:
                sobject = object_plan.sobject
                if sobject not in run.failures and _object_turn(
                    run, object_plan, answers, backfills.get(sobject, []), hints.get(sobject, [])
                ):
                    to_reconcile.add(sobject)
                if sobject not in run.failures:
                    hints.pop(sobject, None)
        finally:
            wake.gone_hints_add(hints)
        # Deletes: the reconciles due.
        reconciles = deletes.reconcile_due(run, states, to_reconcile)
        if reconciles:
            cycle.reconciled = True
            cycle.save(update_fields=["reconciled"])
        for sobject in reconciles:
            _reconcile_turn(run, sobject, states[sobject])
        return run.failures


def _object_turn(
    run: CycleRun, object_plan: ObjectPlan, answers: Answers, backfill: list[str], gone_hints: list[str]
) -> bool:
    """One object's window, the retry of its set-aside records, the back-fill of its new fields,
    the check of its DELETE events' ids and its getDeleted answer; True when getDeleted says it
    needs a reconcile."""
    sobject, state = object_plan.sobject, object_plan.state
    work = bookkeeping.object_start(run, sobject, state, object_plan.window, object_plan.initial)
    retry_ids = set_aside.due_ids(sobject, run.now) if sobject in run.set_aside_objects else []
    needs_reconcile = False
    with bookkeeping.object_isolated(run, sobject, state, work):
        window.read(run, work, answers.query(sobject), object_plan.window, object_plan.fields)
        if retry_ids:
            retry.set_aside_retry(run, work, retry_ids)
        if backfill:
            describe.backfill(run, work, backfill)
        if gone_hints:
            deletes.hinted_gone(run, work, gone_hints)
        if object_plan.deleted_window is not None:
            deleted = answers.deleted(sobject)
            needs_reconcile = deletes.deleted_apply(run, work, deleted, object_plan.deleted_window)
    if sobject not in run.failures:
        bookkeeping.object_synced(run, work)
    return needs_reconcile


def _reconcile_turn(run: CycleRun, sobject: str, state: SyncState) -> None:
    """One object's reconcile and formula refresh (the first load may have completed earlier in
    this cycle: the state says)."""
    work = bookkeeping.object_start(run, sobject, state, None, state.initial_load_completed_at is None)
    with bookkeeping.object_isolated(run, sobject, state, work):
        deletes.reconcile(run, work)
        deletes.formulas_refresh(run, work)
    if sobject not in run.failures:
        bookkeeping.object_reconciled(run, work)
