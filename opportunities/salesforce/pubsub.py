"""The Salesforce Pub/Sub API client (gRPC, `eventbus.v1.PubSub`): change events that wake the sync.

It logs in with the same OAuth flows and the same CA rules as the REST calls (auth.py), sends the
metadata every call needs (`accesstoken`, `instanceurl`, `tenantid` = the org id of the token
response's identity URL), checks each topic with `GetTopic`, and keeps one `Subscribe` stream per
topic on its own thread. Each stream keeps events requested (flow control: the server sends at
most what was asked for, then waits), decodes each event's `ChangeEventHeader` with fastavro and
the schema from `GetSchema` (cached by id), and hands events, keepalives and its end to a sink.
gRPC errors become our own exceptions (exceptions.py) whose message says in words what happened.

Reference: https://developer.salesforce.com/docs/platform/pub-sub-api/guide/intro.html
Reference: salesforce-api.md §5.1 (the facts this client follows)
"""

from __future__ import annotations

import io
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import certifi
import fastavro
import grpc

from eventbus import pubsub_api_pb2 as pb
from eventbus import pubsub_api_pb2_grpc as pb_grpc

from .auth import SalesforceConfig, Token, http_session, token_request
from .exceptions import (
    ChangeStreamAuthExpired,
    ChangeStreamError,
    ChangeStreamReplayInvalid,
    ChangeStreamTransient,
    ChangeStreamUnavailable,
    SalesforceAuthError,
)

logger = logging.getLogger(__name__)

# Events asked for at a time: the API's maximum outstanding (more is treated as 100).
FETCH_BATCH = 100
# Seconds a unary call (GetTopic, GetSchema) may take.
CALL_TIMEOUT = 30.0
REPLAY_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"


@dataclass(frozen=True)
class ChangeEvent:
    """One change event: only what a wake-up and a log line need (payloads are never applied)."""

    topic: str
    replay_id: bytes
    entity: str = ""
    change_type: str = ""
    record_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Keepalive:
    """An empty FetchResponse: the stream is alive, and everything up to `latest_replay_id` was sent."""

    topic: str
    latest_replay_id: bytes


@dataclass(frozen=True)
class StreamEnded:
    """The stream stopped: the server ended it or failed it with `error`."""

    topic: str
    error: ChangeStreamError


StreamItem = ChangeEvent | Keepalive | StreamEnded


def top_up(pending: int, batch: int = FETCH_BATCH) -> int:
    """How many more events to request after a response that says `pending` are still owed: none
    while at least half a batch is owed, otherwise enough to owe a whole batch again."""
    pending = max(0, pending)
    return batch - pending if pending < batch // 2 else 0


def stream_error(
    status: str, error_code: str, details: str, *, topic: str = "", url: str = ""
) -> ChangeStreamError:
    """Our exception, in words, for a gRPC status and the trailer's `error-code` (salesforce-api.md
    §5.1 "Errors")."""
    about = f" ({error_code})" if error_code else (f" ({details})" if details else "")
    subject = f"the change events of {topic}" if topic else "the change stream"
    kwargs: dict[str, Any] = {"status": status, "error_code": error_code}
    if REPLAY_CORRUPTED in error_code or "replayid" in error_code.lower():
        return ChangeStreamReplayInvalid(
            f"The stored replay position of {topic or 'the stream'} is no longer available (older than "
            f"the event retention, or corrupted){about}; the listener starts from the newest events "
            "and runs a cycle, whose window finds whatever happened meanwhile.",
            **kwargs,
        )
    if status == "UNAUTHENTICATED":
        return ChangeStreamAuthExpired(
            f"Salesforce refused the access token for {subject} (expired or revoked){about}; "
            "the listener logs in again.",
            **kwargs,
        )
    if status == "PERMISSION_DENIED" or "not.selected" in error_code:
        if "not.selected" in error_code:
            return ChangeStreamUnavailable(
                f"Change Data Capture is not enabled for the object of {topic or 'the topic'}{about}: select it "
                "in Salesforce (Setup > Change Data Capture).",
                **kwargs,
            )
        return ChangeStreamUnavailable(
            f"The integration user may not subscribe to {subject}{about}: it needs read access and "
            "View All on the object (or View All Data for /data/ChangeEvents).",
            **kwargs,
        )
    if status in ("NOT_FOUND", "INVALID_ARGUMENT"):
        return ChangeStreamUnavailable(
            f"{topic or 'The topic'} is not available{about}: Change Data Capture is not enabled for the "
            "object in Salesforce (Setup > Change Data Capture), or no such topic exists.",
            **kwargs,
        )
    if status == "RESOURCE_EXHAUSTED":
        return ChangeStreamUnavailable(
            f"The org's daily event deliveries are used up{about} (DailyDeliveredPlatformEvents); the "
            "stream is tried again later, and the sync polls meanwhile.",
            **kwargs,
        )
    if status == "UNAVAILABLE":
        where = f"The Pub/Sub API at {url}" if url else "The Pub/Sub API"
        return ChangeStreamTransient(f"{where} cannot be reached or is unavailable{about}.", **kwargs)
    if status == "DEADLINE_EXCEEDED":
        return ChangeStreamTransient(f"The Pub/Sub API did not answer in time{about}.", **kwargs)
    if status == "INTERNAL":
        return ChangeStreamTransient(f"The Pub/Sub API had an internal error{about}.", **kwargs)
    return ChangeStreamTransient(
        f"The Pub/Sub API failed {subject} with {status or 'an error'}{about}.", **kwargs
    )


def _mapped(error: grpc.RpcError, *, topic: str = "", url: str = "") -> ChangeStreamError:
    """`stream_error` for a grpcio exception (a `grpc.Call` carrying the status and trailers)."""
    call: Any = error
    code = call.code() if hasattr(call, "code") else None
    trailers = dict(call.trailing_metadata() or ()) if hasattr(call, "trailing_metadata") else {}
    error_code = trailers.get("error-code", "")
    details = call.details() if hasattr(call, "details") else ""
    return stream_error(
        code.name if code is not None else "",
        error_code if isinstance(error_code, str) else error_code.decode(),
        details or "",
        topic=topic,
        url=url,
    )


def channel_credentials(config: SalesforceConfig) -> grpc.ChannelCredentials:
    """TLS as for the REST calls: `SALESFORCE_CA_BUNDLE` when set, otherwise the same CA bundle
    requests uses (certifi), not gRPC's own."""
    path = config.ca_bundle or certifi.where()
    try:
        roots = Path(path).read_bytes()
    except OSError as error:
        raise SalesforceAuthError(f"Cannot read the CA bundle {path!r}: {error.strerror}.") from error
    return grpc.ssl_channel_credentials(root_certificates=roots)


@dataclass
class PubSubClient:
    """One channel to the Pub/Sub API and the login its calls carry."""

    config: SalesforceConfig
    url: str
    _token: Token | None = None
    _channel: grpc.Channel | None = None
    _stub: pb_grpc.PubSubStub | None = None
    _schemas: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def login(self) -> None:
        """Log in (again): the OAuth token call of auth.py, any of its four flows."""
        self._token = token_request(self.config, http_session(self.config))
        if self._channel is None:
            self._channel = grpc.secure_channel(
                self.url,
                channel_credentials(self.config),
                # A response holds up to 100 events of up to 1 MB each.
                options=[("grpc.max_receive_message_length", 128 * 1024 * 1024)],
            )
            self._stub = pb_grpc.PubSubStub(self._channel)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self._token is None:
            self.login()
        assert self._token is not None
        return (
            ("accesstoken", self._token.access_token),
            ("instanceurl", self._token.instance_url),
            ("tenantid", self._token.org_id),
        )

    @property
    def stub(self) -> pb_grpc.PubSubStub:
        if self._stub is None:
            self.login()
        assert self._stub is not None
        return self._stub

    def ensure_login(self) -> None:
        """Log in unless this client holds a token already (a rebuilt stream keeps its token; an
        UNAUTHENTICATED one is closed first, `close`, and so logs in again)."""
        if self._token is None or self._channel is None:
            self.login()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = self._stub = None
        self._token = None

    def topic(self, name: str) -> pb.TopicInfo:
        """GetTopic: the topic exists and this user may subscribe to it."""
        try:
            info: pb.TopicInfo = self.stub.GetTopic(
                pb.TopicRequest(topic_name=name), metadata=self.metadata, timeout=CALL_TIMEOUT
            )
        except grpc.RpcError as error:
            raise _mapped(error, topic=name, url=self.url) from None
        if not info.can_subscribe:
            raise ChangeStreamUnavailable(
                f"{name} cannot be subscribed to: Change Data Capture is not enabled for its object "
                "(Setup > Change Data Capture), or the integration user lacks read access and View All on it.",
                status="PERMISSION_DENIED",
            )
        return info

    def schema(self, schema_id: str) -> Any:
        """The parsed Avro schema of `schema_id`, fetched once (GetSchema) and cached by id."""
        with self._lock:
            cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        try:
            info: pb.SchemaInfo = self.stub.GetSchema(
                pb.SchemaRequest(schema_id=schema_id), metadata=self.metadata, timeout=CALL_TIMEOUT
            )
        except grpc.RpcError as error:
            raise _mapped(error, url=self.url) from None
        parsed = fastavro.parse_schema(json.loads(info.schema_json))
        with self._lock:
            self._schemas[schema_id] = parsed
        return parsed

    def change_event(self, topic: str, consumed: pb.ConsumerEvent) -> ChangeEvent:
        """The event's header, decoded with its schema. An event that cannot be decoded still wakes
        the sync (its replay id is all a wake-up needs): the failure is logged, not raised."""
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(consumed.event.payload), self.schema(consumed.event.schema_id), None
            )
            header = (record.get("ChangeEventHeader") or {}) if isinstance(record, dict) else {}
            return ChangeEvent(
                topic=topic,
                replay_id=consumed.replay_id,
                entity=str(header.get("entityName") or ""),
                change_type=str(header.get("changeType") or ""),
                record_ids=tuple(header.get("recordIds") or ()),
            )
        except Exception as error:  # fastavro raises IndexError, SchemaParseException, ...
            # Whatever Salesforce sent, the event still wakes: raising here would fail the stream,
            # which resumes just before this event and meets it again until retention drops it.
            logger.warning(
                "A change event on %s could not be decoded (%s); it wakes the sync anyway", topic, error
            )
            return ChangeEvent(topic=topic, replay_id=consumed.replay_id)

    def subscribe(
        self, topic: str, replay_id: bytes | None, sink: Callable[[StreamItem], None]
    ) -> Subscription:
        """Start one Subscribe stream: CUSTOM from `replay_id`, or LATEST when there is none."""
        subscription = Subscription(self, topic, replay_id, sink)
        subscription.start()
        return subscription


class Subscription:
    """One Subscribe stream read on its own thread; `cancel()` ends it without a StreamEnded."""

    def __init__(
        self, client: PubSubClient, topic: str, replay_id: bytes | None, sink: Callable[[StreamItem], None]
    ) -> None:
        self.client = client
        self.topic = topic
        self.sink = sink
        self._outbox: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        first = pb.FetchRequest(topic_name=topic, num_requested=FETCH_BATCH)
        if replay_id:
            first.replay_preset = pb.ReplayPreset.CUSTOM
            first.replay_id = replay_id
        else:
            first.replay_preset = pb.ReplayPreset.LATEST
        self._outbox.put(first)
        self._cancelled = threading.Event()
        self._call: Any = None
        self._thread = threading.Thread(target=self._read, name=f"pubsub {topic}", daemon=True)

    def start(self) -> None:
        self._call = self.client.stub.Subscribe(self._requests(), metadata=self.client.metadata)
        self._thread.start()

    def cancel(self) -> None:
        self._cancelled.set()
        self._outbox.put(None)
        if self._call is not None:
            self._call.cancel()
        self._thread.join(timeout=5)

    def _requests(self) -> Iterator[pb.FetchRequest]:
        while True:
            request = self._outbox.get()
            if request is None:
                return
            yield request

    def _read(self) -> None:
        try:
            for response in self._call:
                for consumed in response.events:
                    self.sink(self.client.change_event(self.topic, consumed))
                if not response.events:
                    self.sink(Keepalive(self.topic, response.latest_replay_id))
                more = top_up(response.pending_num_requested)
                if more:
                    self._outbox.put(pb.FetchRequest(topic_name=self.topic, num_requested=more))
            ended: ChangeStreamError = ChangeStreamTransient(
                f"The Pub/Sub API ended the stream of {self.topic}.", status="OK"
            )
        except grpc.RpcError as error:
            ended = _mapped(error, topic=self.topic, url=self.client.url)
        except Exception as error:  # a failure of this thread must reach the listener, not vanish
            logger.exception("The stream of %s failed", self.topic)
            ended = ChangeStreamTransient(
                f"The stream of {self.topic} failed: {type(error).__name__}: {error}."
            )
        finally:
            self._outbox.put(None)
        if not self._cancelled.is_set():
            self.sink(StreamEnded(self.topic, ended))
