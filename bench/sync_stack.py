"""Benchmark: `make run`'s processes against the emulator, with and without Change Data Capture
(issue P15's acceptance).

One run starts what `make run` starts (Procfile.demo): the emulator with its Pub/Sub API on a
free port, a Celery worker and a separate beat, the change listener (`manage.py
salesforce_listen`, queueing its cycles for the worker) and a web process (`manage.py runserver
--noreload`), all with the default settings except: the demo sales team is off, the org's daily
API limit is generous (`--daily-limit`), and the web process's per-user API throttle is raised so
the bench's own polling of the API is not answered 429. It then measures:

1. Latency: `--changes` changes (a fifth each: stage, amount, new contact role, deleted contact
   role, new contact) at random moments, each until it is visible through the REST API
   (`/api/v1/opportunities/?sf_id=`, `/api/v1/contact-roles/?opportunity=`, `/api/v1/persons/?sf_id=`,
   with a Viewer's token), split into commit (the emulator's write returned) → event received (the
   bench's own Pub/Sub subscriber) → start of the cycle that made it visible → that cycle
   committed (SyncCycle.ended_at) → visible through the API. A change not visible after
   `--timeout` seconds is counted as missing.
2. Idle: `--idle` seconds after the changes, the API calls the emulator counted, projected per
   day, beside the daily id reconciliation's cost (this org's, measured by a real reconcile at
   the end, and at a million opportunities, bench/sync_idle_calls.py's arithmetic), and the
   listener's CPU and RSS over the window (/proc).
3. Bulk: `--bulk` opportunities updated in one control-API transaction, until all are in the
   database: the seconds and the SyncCycle rows that took.

    .venv/bin/python -m bench.sync_stack --compare        # both, side by side (the acceptance run)
    .venv/bin/python -m bench.sync_stack --cdc            # with the listener only
    .venv/bin/python -m bench.sync_stack                  # SALESFORCE_CDC=off: today's polling
    .venv/bin/python -m bench.sync_stack --compare --changes 10 --idle 30 --bulk 500   # a quick look

Benchmarks print; nothing here gates CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.common import django_for, free_port, percentile
from bench.sync_idle_calls import BIG_ORG_ROWS, big_org_reconcile_calls, reconcile_calls
from salesforce_emulator.control import EmulatorControl, EmulatorProcess

KINDS = ("stage", "amount", "new_role", "deleted_role", "new_contact")
TOPICS = (
    "/data/OpportunityChangeEvent",
    "/data/ContactChangeEvent",
    "/data/LeadChangeEvent",
    "/data/OpportunityContactRoleChangeEvent",
)
OPEN_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
)
LATENCY_TARGET = 1.0
CALLS_PER_DAY_TARGET = 2000
BULK_MARKER_AMOUNT = 7_654_321
REDIS_DB = 41  # this bench's Redis database (the helper's range is 41-45)


# --- the processes -------------------------------------------------------------------------------------
class Stack:
    """The processes of Procfile.demo (minus the demo campaign's webhook receiver), each in a
    process group of its own so that stopping it stops its children (Celery's pool) too."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        bin_dir = Path(sys.executable).parent
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        self.celery = str(bin_dir / "celery")

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.var_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
        self.processes[name] = process
        return process

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.var_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        # The main process first (Celery's warm shutdown stops its own pool), then whatever is
        # left of each group.
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the bench's own subscriber: when each change event arrived ---------------------------------------------
class EventClock:
    """Subscribes to the four change-event topics (the app's PubSubClient for login, channel and
    schemas; its own Subscribe loop, because it needs each event's recordIds and commitTimestamp)
    and notes, per record id, when each event arrived."""

    def __init__(self) -> None:
        from django.conf import settings

        from opportunities.salesforce.auth import SalesforceConfig
        from opportunities.salesforce.pubsub import PubSubClient

        self.client = PubSubClient(SalesforceConfig.from_settings(), settings.SALESFORCE_PUBSUB_URL)
        self.arrivals: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.lock = threading.Lock()
        self.calls: list[Any] = []
        self.outboxes: list[queue.Queue[Any]] = []

    def start(self) -> None:
        from eventbus import pubsub_api_pb2 as pb

        for topic in TOPICS:
            outbox: queue.Queue[Any] = queue.Queue()
            outbox.put(
                pb.FetchRequest(topic_name=topic, num_requested=100, replay_preset=pb.ReplayPreset.LATEST)
            )
            call = self.client.stub.Subscribe(self._requests(outbox), metadata=self.client.metadata)
            self.calls.append(call)
            self.outboxes.append(outbox)
            threading.Thread(target=self._read, args=(topic, call, outbox), daemon=True).start()

    @staticmethod
    def _requests(outbox: queue.Queue[Any]) -> Iterator[Any]:
        while (request := outbox.get()) is not None:
            yield request

    def _read(self, topic: str, call: Any, outbox: queue.Queue[Any]) -> None:
        import fastavro
        import grpc

        from eventbus import pubsub_api_pb2 as pb

        try:
            for response in call:
                arrived = time.time()
                for consumed in response.events:
                    schema = self.client.schema(consumed.event.schema_id)
                    record = fastavro.schemaless_reader(io.BytesIO(consumed.event.payload), schema, None)
                    header = record.get("ChangeEventHeader") or {} if isinstance(record, dict) else {}
                    committed = float(header.get("commitTimestamp") or 0) / 1000
                    with self.lock:
                        for record_id in header.get("recordIds") or ():
                            self.arrivals[record_id].append((arrived, committed))
                if response.pending_num_requested < 50:
                    outbox.put(
                        pb.FetchRequest(topic_name=topic, num_requested=100 - response.pending_num_requested)
                    )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                print(f"bench subscriber on {topic} ended: {error.code()} {error.details()}", file=sys.stderr)

    def first_after(self, record_id: str, moment: float) -> tuple[float, float] | None:
        """(arrived, commitTimestamp) of the first event for this record at or after `moment`."""
        with self.lock:
            hits = [a for a in self.arrivals.get(record_id, []) if a[0] >= moment - 0.5]
        return min(hits) if hits else None

    def stop(self) -> None:
        for outbox in self.outboxes:
            outbox.put(None)
        for call in self.calls:
            call.cancel()
        self.client.close()


# --- changes and their visibility ---------------------------------------------------------------------------
@dataclass
class Change:
    kind: str
    sf_id: str
    check: Callable[[requests.Session], bool]
    sent: float  # wall clock (time.time()) before the write
    committed: float = 0.0  # the write returned
    visible: float | None = None  # the response of the first API read that showed it
    last_miss: float | None = None  # the request of the last API read that did not
    last_check: float = 0.0
    missing: bool = False
    event_arrived: float | None = None
    event_committed: float | None = None
    cycle_started: float | None = None
    cycle_ended: float | None = None
    cycle_trigger: str = ""


class ApiWatcher:
    """One thread reading the REST API for every change not visible yet: the fresh ones each
    round, the ones older than 10 s once a second (they are waiting for a slow path anyway)."""

    def __init__(self, base_url: str, token: str, timeout: float, late_timeout: float) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Token {token}"
        self.timeout = timeout
        self.late_timeout = late_timeout
        self.pending: list[Change] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.errors = 0

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(f"{self.base_url}{path}", params=params, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def add(self, change: Change) -> None:
        with self.lock:
            self.pending.append(change)

    def idle(self) -> bool:
        """Every change is visible, or missing (it is still watched, to say when it came late)."""
        with self.lock:
            return all(change.missing for change in self.pending)

    def _run(self) -> None:
        while not self.done.is_set():
            with self.lock:
                batch = list(self.pending)
            checked = False
            for change in batch:
                now = time.time()
                if now - change.committed > self.timeout:
                    change.missing = True
                if now - change.committed > self.late_timeout:
                    self._drop(change)
                    continue
                if now - change.committed > 10 and now - change.last_check < 1:
                    continue
                checked = True
                sent = time.time()
                try:
                    seen = change.check(self.http)
                except requests.RequestException:
                    self.errors += 1
                    seen = False
                change.last_check = sent
                if seen:
                    change.visible = time.time()
                    self._drop(change)
                else:
                    change.last_miss = sent
            if not checked:
                time.sleep(0.02)

    def _drop(self, change: Change) -> None:
        with self.lock:
            self.pending.remove(change)


def opportunity_has(api: ApiWatcher, sf_id: str, key: str, value: Any) -> Callable[[requests.Session], bool]:
    def check(http: requests.Session) -> bool:
        results = api.get("/api/v1/opportunities/", sf_id=sf_id)["results"]
        if not results:
            return False
        got = results[0][key]
        return float(got) == float(value) if key == "amount" and got is not None else bool(got == value)

    return check


def role_listed(
    api: ApiWatcher, opportunity_id: int, role_id: str, listed: bool
) -> Callable[[requests.Session], bool]:
    def check(http: requests.Session) -> bool:
        results = api.get("/api/v1/contact-roles/", opportunity=opportunity_id)["results"]
        return any(r["sf_id"] == role_id for r in results) == listed

    return check


def person_listed(api: ApiWatcher, contact_id: str) -> Callable[[requests.Session], bool]:
    def check(http: requests.Session) -> bool:
        return bool(api.get("/api/v1/persons/", sf_id=contact_id)["results"])

    return check


def make_changes(
    org: EmulatorControl, api: ApiWatcher, count: int, rng: random.Random, max_gap: float
) -> list[Change]:
    """`count` changes, kinds in a shuffled round-robin, each on records no other change touches,
    with a random pause (0 to max_gap seconds) before each."""
    from opportunities.models import ContactRole, Opportunity, Person

    kinds = [KINDS[n % len(KINDS)] for n in range(count)]
    rng.shuffle(kinds)
    opportunities = list(
        Opportunity.live.filter(is_closed=False).order_by("id").values_list("id", "sf_id", "stage_name")
    )
    rng.shuffle(opportunities)
    roles = list(
        ContactRole.objects.filter(is_deleted=False, opportunity__is_deleted=False)
        .exclude(opportunity_id__in=[o[0] for o in opportunities[: 3 * count]])
        .values_list("sf_id", "opportunity_id")
    )
    rng.shuffle(roles)
    contacts = list(
        Person.objects.exclude(sf_contact_id=None)
        .exclude(sf_contact_id="")
        .values_list("sf_contact_id", flat=True)[:2000]
    )
    changes: list[Change] = []
    for number, kind in enumerate(kinds):
        time.sleep(rng.uniform(0, max_gap))
        local_id, sf_id, stage = opportunities.pop()
        sent = time.time()
        if kind == "stage":
            new_stage = rng.choice([s for s in OPEN_STAGES if s != stage])
            org.update("Opportunity", {"Id": sf_id, "StageName": new_stage})
            change = Change(kind, sf_id, opportunity_has(api, sf_id, "stage", new_stage), sent)
        elif kind == "amount":
            amount = rng.randrange(1_000, 2_000_000)
            org.update("Opportunity", {"Id": sf_id, "Amount": amount})
            change = Change(kind, sf_id, opportunity_has(api, sf_id, "amount", amount), sent)
        elif kind == "new_role":
            role = {
                "OpportunityId": sf_id,
                "ContactId": rng.choice(contacts),
                "Role": "Evaluator",
                "IsPrimary": False,
            }
            role_id = org.create("OpportunityContactRole", role)[0]
            change = Change(kind, role_id, role_listed(api, local_id, role_id, True), sent)
        elif kind == "deleted_role":
            role_id, opportunity_id = roles.pop()
            org.delete("OpportunityContactRole", role_id)
            change = Change(kind, role_id, role_listed(api, opportunity_id, role_id, False), sent)
        else:
            contact = {
                "FirstName": "Bench",
                "LastName": f"Contact {number}",
                "Email": f"bench{number}@example.com",
            }
            contact_id = org.create("Contact", contact)[0]
            change = Change(kind, contact_id, person_listed(api, contact_id), sent)
        change.committed = time.time()
        api.add(change)
        changes.append(change)
    return changes


def attribute(changes: list[Change], events: EventClock | None) -> None:
    """Each visible change's event and the cycle that made it visible: the first cycle that
    started before the API showed it and was still running (or ended) after the last read that
    did not show it (pages commit during a cycle, so it may be seen before the cycle ends)."""
    from opportunities.models import SyncCycle

    cycles = [
        (c.started_at.timestamp(), c.ended_at.timestamp() if c.ended_at else None, c.trigger)
        for c in SyncCycle.objects.order_by("started_at")
    ]
    for change in changes:
        if events is not None:
            hit = events.first_after(change.sf_id, change.sent)
            if hit:
                change.event_arrived, change.event_committed = hit
        if change.visible is None:
            continue
        low = change.last_miss if change.last_miss is not None else change.sent
        for started, ended, trigger in cycles:
            if started < change.visible and (ended is None or ended > low):
                change.cycle_started, change.cycle_ended, change.cycle_trigger = started, ended, trigger
                break


def stats_of(values: list[float]) -> dict[str, float | int]:
    """Percentiles; a missing change counts as infinitely late (math.inf), printed as such."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def latency(change: Change) -> float:
    """Change to visible in seconds; math.inf when it was not visible within the timeout."""
    if change.missing or change.visible is None:
        return math.inf
    return change.visible - change.committed


def latency_report(changes: list[Change]) -> dict[str, Any]:
    report: dict[str, Any] = {"total": len(changes), "missing": sum(c.missing for c in changes)}
    seen = [c for c in changes if c.visible is not None and not c.missing]
    report["all"] = stats_of([latency(c) for c in changes])
    for kind in KINDS:
        of_kind = [c for c in changes if c.kind == kind]
        report[kind] = stats_of([latency(c) for c in of_kind])
        report[kind]["missing"] = sum(c.missing for c in of_kind)
        late = [c.visible - c.committed for c in of_kind if c.missing and c.visible is not None]
        report[kind]["late"] = stats_of(late)
    split: dict[str, list[float]] = defaultdict(list)
    for c in seen:
        assert c.visible is not None
        if c.event_arrived is not None:
            split["commit_to_event"].append(c.event_arrived - c.committed)
            if c.event_committed:
                split["event_commit_stamp_to_event"].append(c.event_arrived - c.event_committed)
        if c.cycle_started is not None:
            split["to_cycle_start"].append(c.cycle_started - (c.event_arrived or c.committed))
            if c.cycle_ended is not None:
                split["cycle_start_to_committed"].append(c.cycle_ended - c.cycle_started)
                split["committed_to_visible"].append(c.visible - c.cycle_ended)
    report["split"] = {name: stats_of(values) for name, values in split.items()}
    triggers: dict[str, int] = defaultdict(int)
    for c in seen:
        triggers[c.cycle_trigger or "?"] += 1
    report["made_visible_by"] = dict(triggers)
    report["events_received"] = sum(c.event_arrived is not None for c in changes)
    return report


# --- one run ----------------------------------------------------------------------------------------------
def wait_for(what: str, check: Callable[[], Any], timeout: float, stack: Stack, step: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        value = check()
        if value:
            return value
        time.sleep(step)
    raise SystemExit(f"{what}: not within {timeout:.0f} s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    mode = "cdc" if args.cdc else "poll"
    result: dict[str, Any] = {
        "mode": mode,
        "broker": args.broker,
        "database": "postgres" if args.postgres else "sqlite",
    }
    temp = Path(tempfile.mkdtemp(prefix="oppsync-bench-stack-"))
    process = EmulatorProcess(
        temp / "emulator", free_port(), extra_args=["--demo-fields", "--log-level", "warning"]
    )
    with ExitStack() as cleanup:
        if not args.keep:
            cleanup.callback(shutil.rmtree, temp, ignore_errors=True)
        else:
            print(f"keeping {temp}")
        org = process.start()
        cleanup.callback(process.stop)
        generated = org.generate(opportunities=max(args.opportunities, args.bulk), people=args.people)
        org.faults(api_usage={"used": 0, "max": args.daily_limit})
        extra = {
            "SALESFORCE_PUBSUB_URL": process.pubsub_url,
            "SALESFORCE_CDC": "auto" if args.cdc else "off",
            # The bench reads the API many times a second; the default 1,200/minute would answer 429.
            "API_THROTTLE_USER": "1000000/minute",
            "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}" if args.broker == "redis" else "",
        }
        database_url = args.database_url if args.postgres else None
        var_dir = django_for(process, database_url=database_url, **extra)
        if args.keep:
            print(f"keeping {var_dir}")
        else:
            cleanup.callback(shutil.rmtree, var_dir, ignore_errors=True)
        if args.broker == "redis":
            import redis

            redis.Redis.from_url(extra["REDIS_URL"]).flushdb()
        from django.contrib.auth.models import Group, User
        from rest_framework.authtoken.models import Token

        from oppsync_site.roles import VIEWERS

        user = User.objects.create_user("bench-viewer", password="bench-viewer-password")  # noqa: S106
        user.groups.add(Group.objects.get(name=VIEWERS))
        token = Token.objects.create(user=user).key

        stack = Stack(var_dir)
        cleanup.callback(stack.stop)
        web_port = free_port()
        stack.start("web", [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{web_port}"])
        stack.start(
            "worker",
            [
                stack.celery,
                "-A",
                "oppsync_site",
                "worker",
                "--queues",
                "default,sync,triggers,webhooks",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
            ],
        )
        stack.start(
            "beat",
            [
                stack.celery,
                "-A",
                "oppsync_site",
                "beat",
                "--loglevel",
                "WARNING",
                "--schedule",
                str(var_dir / "celerybeat-schedule"),
            ],
        )
        listener = None
        if args.cdc:
            listener = stack.start("listener", [sys.executable, "manage.py", "salesforce_listen"])

        from opportunities.models import Opportunity, SyncCycle, SyncState
        from opportunities.sync.schedule import effective_interval, poll_cadence

        started = time.monotonic()
        wait_for(
            "the initial load",
            lambda: SyncState.objects.filter(initial_load_completed_at__isnull=False).count() >= 4,
            args.load_timeout,
            stack,
        )
        result["org"] = generated
        result["initial_load_seconds"] = time.monotonic() - started
        api = ApiWatcher(f"http://127.0.0.1:{web_port}", token, args.timeout, args.timeout + args.idle + 60)

        def web_up() -> bool:
            try:
                api.get("/api/v1/opportunities/", sf_id="none")
            except requests.RequestException:
                return False
            return True

        wait_for("the web process", web_up, 60, stack)
        events = None
        if args.cdc:
            wait_for("a healthy change stream", lambda: poll_cadence().stream_healthy, 120, stack)
            events = EventClock()
            events.start()
            cleanup.callback(events.stop)
            # A probe: the subscriber's streams are open once an event reaches it.
            probe = Opportunity.live.filter(is_closed=False).values_list("sf_id", flat=True).first()
            assert probe is not None
            time.sleep(2)
            moment = time.time()
            org.update("Opportunity", {"Id": probe, "Description": "bench probe"})
            wait_for(
                "the bench subscriber's first event",
                lambda: events.first_after(probe, moment),
                60,
                stack,
                0.05,
            )
        cadence = poll_cadence()
        result["cadence"] = {
            "seconds": cadence.seconds,
            "reason": cadence.reason,
            "effective": effective_interval(),
        }
        time.sleep(3)  # let the probe's cycle finish

        # 1. latency
        api.thread.start()
        rng = random.Random(args.seed)
        changes = make_changes(org, api, args.changes, rng, args.max_gap)
        wait_for("every change visible or missing", api.idle, args.timeout + 60, stack)

        # 2. idle
        time.sleep(5)  # the last change's follow-up cycle
        calls_before = org.api_calls()
        window_start = dt.datetime.now(dt.UTC)
        cpu_before = proc_cpu_seconds(listener.pid) if listener else 0.0
        time.sleep(args.idle)
        stack.check_alive()
        calls = org.api_calls() - calls_before
        idle: dict[str, Any] = {"seconds": args.idle, "calls": calls, "per_day": calls * 86400 / args.idle}
        window_cycles = SyncCycle.objects.filter(started_at__gte=window_start)
        idle["cycles"] = window_cycles.count()
        # What the cycles recorded themselves, beside the emulator's count.
        idle["cycle_api_calls"] = sum(window_cycles.values_list("api_calls", flat=True))
        idle["cycles_by_trigger"] = {
            t: window_cycles.filter(trigger=t).count()
            for t in set(window_cycles.values_list("trigger", flat=True))
        }
        if listener:
            idle["listener_cpu_seconds_per_hour"] = (
                (proc_cpu_seconds(listener.pid) - cpu_before) * 3600 / args.idle
            )
            idle["listener_rss_mb"] = proc_rss_mb(listener.pid)
        result["idle"] = idle
        # The missing changes were watched through the idle window, to say when they came.
        api.done.set()
        attribute(changes, events)
        result["latency"] = latency_report(changes)
        result["api_read_errors"] = api.errors
        result["changes"] = [
            {
                "kind": c.kind,
                "missing": c.missing,
                "latency": None if c.visible is None else c.visible - c.committed,
                "event": None if c.event_arrived is None else c.event_arrived - c.committed,
                "cycle_start": None if c.cycle_started is None else c.cycle_started - c.committed,
                "cycle_end": None if c.cycle_ended is None else c.cycle_ended - c.committed,
                "trigger": c.cycle_trigger,
            }
            for c in changes
        ]

        # 3. bulk
        if args.bulk:
            ids = list(Opportunity.live.order_by("id").values_list("sf_id", flat=True)[: args.bulk])
            bulk_start = time.time()
            org.update("Opportunity", *({"Id": sf_id, "Amount": BULK_MARKER_AMOUNT} for sf_id in ids))
            bulk_written = time.time()
            complete = wait_for(
                f"{len(ids)} updated opportunities in the database",
                lambda: (
                    Opportunity.objects.filter(amount=BULK_MARKER_AMOUNT).count() >= len(ids) and time.time()
                ),
                args.bulk_timeout,
                stack,
                0.1,
            )
            overlapping = SyncCycle.objects.filter(
                started_at__lte=dt.datetime.fromtimestamp(complete, dt.UTC)
            ).exclude(ended_at__lt=dt.datetime.fromtimestamp(bulk_start, dt.UTC))
            # The cycle that wrote the last page records its calls when it ends.
            wait_for(
                "the bulk's cycles to end", lambda: not overlapping.filter(ended_at=None).exists(), 300, stack
            )
            result["bulk"] = {
                "records": len(ids),
                "write_seconds": bulk_written - bulk_start,
                "seconds": complete - bulk_written,
                "cycles": overlapping.count(),
                "api_calls": sum(overlapping.values_list("api_calls", flat=True)),
            }

        # The daily id reconciliation of this org, run for real once (the operator's cycle).
        from opportunities.sync.service import sync_cycle_run

        reconcile = wait_for("a reconcile cycle", lambda: sync_cycle_run(reconcile=True), 300, stack, 1)
        counts = org.stats()["counts"]
        result["reconcile"] = {
            "measured_calls": reconcile.api_calls,
            "status": reconcile.status,
            "formula_calls": reconcile_calls({name: counts[name] for name in BIG_ORG_ROWS}),
            "org_rows": {name: counts[name] for name in BIG_ORG_ROWS},
            "at_1m_calls": big_org_reconcile_calls(),
        }
    return result


# --- printing ---------------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if value == math.inf:
        return "missing"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def seconds(value: float) -> str:
    return "missing" if value == math.inf else f"{value:.2f}"


def stats_text(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return "n 0"
    return (
        f"p50 {seconds(s['p50'])}  p95 {seconds(s['p95'])}  p99 {seconds(s['p99'])}  max {seconds(s['max'])}  "
        f"(n {s['n']})"
    )


def print_run(r: dict[str, Any]) -> None:
    lat = r["latency"]
    print(f"== mode {r['mode']}  broker {r['broker']}  database {r['database']}  org {r['org']}")
    print(
        f"initial_load_seconds {r['initial_load_seconds']:.1f}  cadence {r['cadence']['seconds']:g} s "
        f"(effective {r['cadence']['effective']:.1f} s): {r['cadence']['reason']}"
    )
    ok = lat["all"].get("p95", 1e9) < LATENCY_TARGET and not lat["missing"]
    print(
        f"changes {lat['total']}  missing after the timeout {lat['missing']}  events received {lat['events_received']}"
    )
    print(
        f"change_to_visible_seconds all: {stats_text(lat['all'])}  target p95 < {LATENCY_TARGET:g} s: "
        f"{'met' if ok else 'NOT met'}"
    )
    for kind in KINDS:
        late = f"  (came late: {stats_text(lat[kind]['late'])})" if lat[kind]["late"].get("n") else ""
        print(f"  {kind:13} {stats_text(lat[kind])}  missing {lat[kind]['missing']}{late}")
    for name, label in (
        ("commit_to_event", "commit (write returned) -> event received"),
        ("event_commit_stamp_to_event", "event commitTimestamp -> event received"),
        ("to_cycle_start", "event received (or commit) -> cycle start"),
        ("cycle_start_to_committed", "cycle start -> cycle committed"),
        ("committed_to_visible", "cycle committed -> visible in the API"),
    ):
        if name in lat["split"]:
            print(f"  split {label:45} {stats_text(lat['split'][name])}")
    print(f"  made visible by cycles triggered by: {lat['made_visible_by']}")
    idle = r["idle"]
    ok = idle["per_day"] < CALLS_PER_DAY_TARGET
    print(
        f"idle {idle['seconds']:g} s: api_calls {idle['calls']}  projected_per_day {idle['per_day']:,.0f}  "
        f"target < {CALLS_PER_DAY_TARGET:,}: {'met' if ok else 'NOT met'}  cycles {idle['cycles']} "
        f"{idle['cycles_by_trigger']} recording {idle.get('cycle_api_calls')} calls"
    )
    rec = r["reconcile"]
    print(
        f"  daily id reconciliation (not in the projection): this org {rec['measured_calls']} calls measured "
        f"({rec['formula_calls']} by the formula for {rec['org_rows']}); at 1M opportunities "
        f"{rec['at_1m_calls']:,} calls ({BIG_ORG_ROWS})"
    )
    if "listener_rss_mb" in idle:
        print(
            f"  listener idle: cpu {idle['listener_cpu_seconds_per_hour']:.1f} s/hour  rss {idle['listener_rss_mb']:.0f} MB"
        )
    if "bulk" in r:
        b = r["bulk"]
        print(
            f"bulk update of {b['records']:,} opportunities (one transaction, {b['write_seconds']:.1f} s to write): "
            f"complete in the database after {b['seconds']:.1f} s, {b['cycles']} cycles, {b['api_calls']} api calls"
        )


def kind_figure(kind: str, name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: r["latency"][kind].get(name)


def print_compare(results: list[dict[str, Any]]) -> None:
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("change->visible p50 s", lambda r: r["latency"]["all"].get("p50")),
        ("change->visible p95 s (target < 1)", lambda r: r["latency"]["all"].get("p95")),
        ("change->visible p99 s", lambda r: r["latency"]["all"].get("p99")),
        ("changes missing", lambda r: r["latency"]["missing"]),
        *[(f"  {k} p50 s", kind_figure(k, "p50")) for k in KINDS],
        *[(f"  {k} p95 s", kind_figure(k, "p95")) for k in KINDS],
        ("idle api calls/day (target < 2,000)", lambda r: round(r["idle"]["per_day"])),
        ("reconcile calls, this org", lambda r: r["reconcile"]["measured_calls"]),
        ("reconcile calls, 1M opps", lambda r: r["reconcile"]["at_1m_calls"]),
        ("listener cpu s/hour idle", lambda r: r["idle"].get("listener_cpu_seconds_per_hour")),
        ("listener rss MB", lambda r: r["idle"].get("listener_rss_mb")),
        ("bulk seconds", lambda r: r.get("bulk", {}).get("seconds")),
        ("bulk cycles", lambda r: r.get("bulk", {}).get("cycles")),
    ]
    print("\n== side by side")
    print(f"{'':40}" + "".join(f"{r['mode']:>14}" for r in results))
    for label, get in rows:
        print(f"{label:40}" + "".join(f"{fmt(get(r)):>14}" for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdc", action="store_true", help="run the listener (SALESFORCE_CDC=auto)")
    parser.add_argument("--compare", action="store_true", help="run with CDC, then without, and print both")
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--max-gap", type=float, default=3.0, help="the longest random pause between changes")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="a change not visible by then is missing"
    )
    parser.add_argument("--idle", type=float, default=300.0, help="the idle window's seconds")
    parser.add_argument("--bulk", type=int, default=10_000, help="opportunities updated at once (0: none)")
    parser.add_argument("--bulk-timeout", type=float, default=900.0)
    parser.add_argument("--opportunities", type=int, default=2000, help="the org's size (at least --bulk)")
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--daily-limit", type=int, default=500_000, help="the org's DailyApiRequests Max")
    parser.add_argument(
        "--broker", choices=("file", "redis"), default="file", help="file: make run's default"
    )
    parser.add_argument("--redis-db", type=int, default=REDIS_DB)
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL at --database-url instead of SQLite"
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/oppsync_h_bench")
    parser.add_argument("--load-timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, emulator data)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.compare:
        # Django is set up once per process: each mode runs in a child of its own.
        results = []
        argv = [a for a in sys.argv[1:] if a not in ("--compare", "--cdc")]
        with tempfile.TemporaryDirectory() as folder:
            for mode in ("cdc", "poll"):
                out = Path(folder) / f"{mode}.json"
                command = [
                    sys.executable,
                    "-m",
                    "bench.sync_stack",
                    *(["--cdc"] if mode == "cdc" else []),
                    *argv,
                ]
                subprocess.run([*command, "--json", str(out)], check=True)
                results.append(json.loads(out.read_text()))
        print_compare(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return
    result = run(args)
    print_run(result)
    sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
