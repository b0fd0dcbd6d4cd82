"""The emulated org's Pub/Sub API (gRPC `eventbus.v1.PubSub`, salesforce-api.md §5.1) on a TLS port
of its own: GetTopic, GetSchema and Subscribe over the change-event log of change_events.py, with
the documented metadata, flow control, keepalives, replay presets and error trailers, and the
faults the control API injects (`POST /__emulator__/pubsub`).

The server is a `grpc.aio` server on the same asyncio event loop as the REST app (uvicorn's), not
on a thread: the Store, the fault state and the sales team all live on that loop, so a stream
reads the log and the faults without locks, and a commit wakes the streams with a plain
`asyncio.Event` (through `call_soon_threadsafe`, in case a write ever comes from another thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

from eventbus import pubsub_api_pb2 as pb
from eventbus import pubsub_api_pb2_grpc as pb_grpc

from .change_events import EventBus, change_event_name, decode_replay_id, encode_replay_id
from .schema import OBJECT_NAMES
from .store import INTEGRATION_USER_ID, ORG_ID, Store

logger = logging.getLogger("salesforce_emulator.pubsub")

DEFAULT_KEEPALIVE_SECONDS = 270.0
MAX_REQUESTED = 100  # §5.1: at most 100 outstanding; more is treated as 100
ALL_CHANGES = "/data/ChangeEvents"
# The trailer codes §5.1 names; the others are the emulator's own, in the same style (Salesforce
# documents the gRPC status, not every code).
CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
LIMIT_EXCEEDED = "sfdc.platform.eventbus.grpc.subscription.limit.exceeded"
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
TOPIC_NOT_FOUND = "sfdc.platform.eventbus.grpc.topic.not.found"
NOT_SELECTED = "sfdc.platform.eventbus.grpc.subscription.entity.not.selected"
SCHEMA_NOT_FOUND = "sfdc.platform.eventbus.grpc.schema.not.found"
BAD_REQUEST = "sfdc.platform.eventbus.grpc.fetch.request.invalid"
UNAVAILABLE = "sfdc.platform.eventbus.grpc.service.unavailable"


@dataclass
class PubSubFaults:
    """What the control API asked the Pub/Sub server to do wrong."""

    stall: bool = False  # streams send nothing: no events, no keepalives
    delay_ms: float = 0.0  # events leave this much later than they are read
    # Bumped by a reset: streams opened before it end ("end": the call completes, "unavailable":
    # status UNAVAILABLE).
    reset_epoch: int = 0
    reset_mode: str = "end"


class RpcError(Exception):
    """Ends an RPC with this status and the `error-code` trailer."""

    def __init__(self, code: grpc.StatusCode, error_code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.error_code = error_code
        self.message = message


@dataclass
class Topic:
    name: str
    sobject: str | None  # the one object of a per-object topic
    channel: str | None = None  # a custom channel's name

    def entities(self, bus: EventBus) -> set[str]:
        """Whose events the topic carries, now (the selection and channels may change meanwhile)."""
        if self.sobject is not None:
            return {self.sobject}
        if self.channel is not None:
            return set(bus.channels().get(self.channel, []))
        return set(bus.selected())


class PubSubService(pb_grpc.PubSubServicer):
    """The servicer, and the state the control API changes."""

    def __init__(self, store: Store, instance_url: str, keepalive_seconds: float) -> None:
        self.store = store
        self.bus: EventBus = store.events
        self.instance_url = instance_url
        self.keepalive_seconds = keepalive_seconds
        self.faults = PubSubFaults()
        self._wakeups: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Subscribe calls that got past their first request: a test waits for its stream to be
        # in place before it writes (LATEST starts at the moment the server reads the request).
        self.subscriptions_started = 0
        # The same, per replay preset, and where each topic's latest CUSTOM subscription started
        # (a position in the log): a test tells a listener that resumed from its stored replay id
        # from one that started at LATEST.
        self.subscriptions_by_preset: dict[str, int] = {"LATEST": 0, "EARLIEST": 0, "CUSTOM": 0}
        self.custom_starts: dict[str, int] = {}
        self.bus.listeners.append(self.wake)

    def wake(self) -> None:
        """Every open stream looks again (new events, a fault, expired sessions)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for event in list(self._wakeups):
            loop.call_soon_threadsafe(event.set)

    # --- the control API --------------------------------------------------------------------------
    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /__emulator__/pubsub` (EmulatorControl's pubsub_* methods)."""
        bus = self.bus
        if body.get("clear"):
            self.clear_faults()
        for sobject, enabled in body.get("select", {}).items():
            bus.select(sobject, bool(enabled))
        if "channel" in body:
            bus.define_channel(str(body["channel"]["name"]), list(body["channel"]["entities"]))
        if "retention_seconds" in body:
            self.store.meta_set("cdc_retention_seconds", float(body["retention_seconds"]))
        if "keepalive_seconds" in body:
            self.keepalive_seconds = float(body["keepalive_seconds"])
        if "drop_next" in body:
            bus.drop_next = int(body["drop_next"])
        if "gap" in body:
            gap = body["gap"]
            bus.publish_header_only(
                str(gap["sobject"]),
                str(gap.get("change_type", "GAP_UPDATE")),
                list(gap.get("ids", [])),
                INTEGRATION_USER_ID,
            )
        if "stall" in body:
            self.faults.stall = bool(body["stall"])
        if "delay_ms" in body:
            self.faults.delay_ms = float(body["delay_ms"])
        if "reset" in body:
            mode = str(body["reset"])
            if mode not in ("end", "unavailable"):
                raise ValueError(f"reset is 'end' or 'unavailable', not {mode!r}")
            self.faults.reset_epoch += 1
            self.faults.reset_mode = mode
        if "deliveries" in body:
            bus.set_deliveries(body["deliveries"].get("used"), body["deliveries"].get("max"))
        if body.get("expire_tokens"):
            self.store.sessions_expire_all()
        self.wake()
        used, maximum = bus.deliveries()
        return {
            "selected": bus.selected(),
            "channels": bus.channels(),
            "latest_replay": bus.latest(),
            "deliveries": {"used": used, "max": maximum},
            "keepalive_seconds": self.keepalive_seconds,
            "subscriptions_started": self.subscriptions_started,
            "subscriptions_by_preset": dict(self.subscriptions_by_preset),
            "custom_starts": dict(self.custom_starts),
            "open_streams": len(self._wakeups),
        }

    def clear_faults(self) -> None:
        epoch = self.faults.reset_epoch
        self.faults = PubSubFaults(reset_epoch=epoch)
        self.bus.drop_next = 0

    # --- metadata, topics -------------------------------------------------------------------------
    def _authenticate(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        metadata = dict(context.invocation_metadata() or ())
        token = str(metadata.get("accesstoken", ""))
        instance = str(metadata.get("instanceurl", "")).rstrip("/")
        tenant = str(metadata.get("tenantid", ""))
        if not token or not self.store.session_valid(token, time.time()):
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "Session expired or invalid")
        if instance != self.instance_url.rstrip("/"):
            raise RpcError(
                grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, f"instanceurl {instance!r} is not this org's"
            )
        if tenant not in (ORG_ID, ORG_ID[:15]):
            raise RpcError(
                grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, f"tenantid {tenant!r} is not this org's"
            )
        return token

    def _topic(self, name: str) -> Topic:
        if name == ALL_CHANGES:
            return Topic(name, None)
        channels = self.bus.channels()
        if name.startswith("/data/") and name[len("/data/") :] in channels:
            return Topic(name, None, name[len("/data/") :])
        for sobject in OBJECT_NAMES:
            if name == f"/data/{change_event_name(sobject)}":
                return Topic(name, sobject)
        raise RpcError(grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND, f"Topic {name!r} does not exist")

    async def _fail(
        self, context: grpc.aio.ServicerContext[Any, Any], error: RpcError, rpc_id: str
    ) -> NoReturn:
        await context.abort(
            error.code,
            f"{error.message} rpcId: {rpc_id}",
            trailing_metadata=(("error-code", error.error_code), ("rpc-id", rpc_id)),
        )
        raise AssertionError("abort returns only by raising")  # pragma: no cover

    # --- the RPCs ---------------------------------------------------------------------------------
    async def GetTopic(  # the proto's names
        self, request: pb.TopicRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.TopicInfo:
        rpc_id = str(uuid.uuid4())
        try:
            self._authenticate(context)
            topic = self._topic(request.topic_name)
        except RpcError as error:
            await self._fail(context, error, rpc_id)
        schema_id = self.bus.schema_for(topic.sobject).schema_id if topic.sobject else ""
        return pb.TopicInfo(
            topic_name=topic.name,
            tenant_guid=ORG_ID,
            can_publish=False,
            can_subscribe=topic.sobject is None or topic.sobject in self.bus.selected(),
            schema_id=schema_id,
            rpc_id=rpc_id,
        )

    async def GetSchema(  # the proto's names
        self, request: pb.SchemaRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SchemaInfo:
        rpc_id = str(uuid.uuid4())
        try:
            self._authenticate(context)
            schema_json = self.bus.schema_json(request.schema_id)
            if schema_json is None:
                raise RpcError(
                    grpc.StatusCode.NOT_FOUND, SCHEMA_NOT_FOUND, f"No schema with id {request.schema_id!r}"
                )
        except RpcError as error:
            await self._fail(context, error, rpc_id)
        return pb.SchemaInfo(schema_json=schema_json, schema_id=request.schema_id, rpc_id=rpc_id)

    async def Subscribe(  # the proto's names
        self, request_iterator: AsyncIterator[pb.FetchRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.FetchResponse]:
        rpc_id = str(uuid.uuid4())
        self._loop = asyncio.get_running_loop()
        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)
        stream = _Stream(self, rpc_id, wakeup)
        reader: asyncio.Task[None] | None = None
        try:
            token = self._authenticate(context)
            first = await anext(aiter(request_iterator), None)
            if first is None:
                return
            position, topic = self._start(first)
            self.subscriptions_started += 1
            preset = pb.ReplayPreset.Name(first.replay_preset)
            self.subscriptions_by_preset[preset] = self.subscriptions_by_preset.get(preset, 0) + 1
            if first.replay_preset == pb.CUSTOM:
                self.custom_starts[topic.name] = position
            stream.add_requested(first.num_requested)
            reader = asyncio.create_task(stream.read_requests(request_iterator))
            async for response in stream.responses(token, topic, position):
                yield response
        except RpcError as error:
            await self._fail(context, error, rpc_id)
        finally:
            self._wakeups.discard(wakeup)
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    def _start(self, first: pb.FetchRequest) -> tuple[int, Topic]:
        """The topic and the position after which events are delivered."""
        topic = self._topic(first.topic_name)
        if topic.sobject is not None and topic.sobject not in self.bus.selected():
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                NOT_SELECTED,
                f"{topic.sobject} is not selected for Change Data Capture (Setup > Change Data Capture)",
            )
        self._check_deliveries()
        expired_upto = self.bus.expire()
        latest = self.bus.latest()
        if first.replay_preset == pb.LATEST:
            return latest, topic
        if first.replay_preset == pb.EARLIEST:
            return expired_upto, topic
        if first.replay_preset != pb.CUSTOM:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, BAD_REQUEST, "unknown replay_preset")
        position = decode_replay_id(first.replay_id)
        if position is None or position > latest or position < expired_upto:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                CORRUPTED,
                "The replay ID validation failed: it is unknown to this org or older than the retention window.",
            )
        return position, topic

    def _check_deliveries(self) -> int:
        used, maximum = self.bus.deliveries()
        if used >= maximum:
            raise RpcError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                LIMIT_EXCEEDED,
                f"The org's daily event delivery allocation ({maximum}) is used up.",
            )
        return maximum - used


class _Stream:
    """One Subscribe call: what the client asked for, and the loop that answers it."""

    def __init__(self, service: PubSubService, rpc_id: str, wakeup: asyncio.Event) -> None:
        self.service = service
        self.rpc_id = rpc_id
        self.wakeup = wakeup
        self.pending = 0
        self.epoch = service.faults.reset_epoch

    def add_requested(self, count: int) -> None:
        if count < 0:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT, BAD_REQUEST, "num_requested must not be negative"
            )
        self.pending = min(MAX_REQUESTED, self.pending + count)

    async def read_requests(self, requests: AsyncIterator[pb.FetchRequest]) -> None:
        """Later FetchRequests on the same stream ask for more events (§5.1 Flow control)."""
        async for request in requests:
            self.pending = min(MAX_REQUESTED, self.pending + max(0, request.num_requested))
            self.wakeup.set()

    async def responses(self, token: str, topic: Topic, position: int) -> AsyncIterator[pb.FetchResponse]:
        service, bus = self.service, self.service.bus
        last_sent = time.monotonic()
        while True:
            self.wakeup.clear()
            faults = service.faults
            if faults.reset_epoch != self.epoch:
                if faults.reset_mode == "unavailable":
                    raise RpcError(
                        grpc.StatusCode.UNAVAILABLE, UNAVAILABLE, "The service is unavailable; retry."
                    )
                return
            if not service.store.session_valid(token, time.time()):
                raise RpcError(grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "Session expired or invalid")
            if not faults.stall and self.pending > 0:
                latest = bus.latest()
                remaining = service._check_deliveries()
                rows = bus.read(position, topic.entities(bus), min(self.pending, remaining))
                if rows and faults.delay_ms > 0:
                    await asyncio.sleep(faults.delay_ms / 1000)
                if rows:
                    self.pending -= len(rows)
                    position = rows[-1][0]
                    bus.count_deliveries(len(rows))
                    last_sent = time.monotonic()
                    yield self._response(rows, position)
                    continue
                if time.monotonic() - last_sent >= service.keepalive_seconds:
                    # A keepalive: nothing for this topic up to `latest`, so a client may resume there.
                    position = max(position, latest)
                    last_sent = time.monotonic()
                    yield self._response([], position)
                    continue
            # Sleep until woken (an event, a request, a fault), the next keepalive is due (only while
            # events are requested and the stream is not stalled) or the session expires.
            deadlines = []
            if not faults.stall and self.pending > 0:
                deadlines.append(last_sent + service.keepalive_seconds - time.monotonic())
            expires_at = service.store.session_expires_at(token)
            if expires_at is not None:
                deadlines.append(expires_at - time.time() + 0.01)
            timeout = max(0.01, min(deadlines)) if deadlines else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=timeout)

    def _response(self, rows: list[tuple[int, str, str, bytes]], position: int) -> pb.FetchResponse:
        return pb.FetchResponse(
            events=[
                pb.ConsumerEvent(
                    event=pb.ProducerEvent(id=event_id, schema_id=schema_id, payload=payload),
                    replay_id=encode_replay_id(replay),
                )
                for replay, schema_id, event_id, payload in rows
            ],
            latest_replay_id=encode_replay_id(position),
            rpc_id=self.rpc_id,
            pending_num_requested=self.pending,
        )


async def start_pubsub_server(
    service: PubSubService, bind: str, port: int, cert_chain: bytes, key: bytes
) -> tuple[grpc.aio.Server, int]:
    """Serve the Pub/Sub API on this loop with the REST port's certificate; the port bound."""
    # No SO_REUSEPORT (grpc sets it by default): a second emulator on a taken port must fail, not share it.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_PubSubServicer_to_server(service, server)
    try:
        bound = server.add_secure_port(f"{bind}:{port}", grpc.ssl_server_credentials([(key, cert_chain)]))
    except RuntimeError as error:  # grpc's words for a port in use or a bad address are a traceback
        raise SystemExit(f"The Pub/Sub API cannot listen on {bind}:{port} (in use?): {error}") from None
    await server.start()
    service._loop = asyncio.get_running_loop()
    return server, bound
