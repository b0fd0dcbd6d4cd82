"""A second, independent Pub/Sub client for the conformance suites: the grpcio stubs of eventbus/
and the plain `avro` package's decoder (the product uses fastavro), written from
salesforce-api.md §5.1 and nothing of the emulator's code."""

from __future__ import annotations

import io
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import avro.io
import avro.schema
import grpc

from eventbus import pubsub_api_pb2 as pb
from eventbus import pubsub_api_pb2_grpc as pb_grpc
from salesforce_emulator.control import EmulatorControl, EmulatorProcess
from tests.integration.conftest import login

CHANGE_TOPICS = {
    "Opportunity": "/data/OpportunityChangeEvent",
    "Contact": "/data/ContactChangeEvent",
    "Lead": "/data/LeadChangeEvent",
    "OpportunityContactRole": "/data/OpportunityContactRoleChangeEvent",
}
DEADLINE = 60.0  # generous: the machine's two cores may be busy


def auth_metadata(emulator: EmulatorControl) -> list[tuple[str, str]]:
    """§5.1: accesstoken, instanceurl and tenantid (the org id in the token response's `id` URL)."""
    token = login(emulator)
    org_id = token["id"].rstrip("/").split("/")[-2]
    return [
        ("accesstoken", token["access_token"]),
        ("instanceurl", token["instance_url"]),
        ("tenantid", org_id),
    ]


def channel(process: EmulatorProcess) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=process.ca_file.read_bytes())
    return grpc.secure_channel(process.pubsub_url, credentials)


def trailer(error: grpc.RpcError, key: str) -> str | None:
    metadata: Any = error.trailing_metadata()  # the RpcError of a call is a grpc.Call too
    return next((str(value) for name, value in metadata or () if name == key), None)


class Client:
    """GetTopic, GetSchema (cached by id) and the Avro decoding of events."""

    def __init__(self, process: EmulatorProcess, metadata: list[tuple[str, str]]) -> None:
        self.channel = channel(process)
        self.stub = pb_grpc.PubSubStub(self.channel)
        self.metadata = metadata
        self.schemas: dict[str, avro.schema.Schema] = {}

    def close(self) -> None:
        self.channel.close()

    def topic(self, name: str) -> pb.TopicInfo:
        return self.stub.GetTopic(pb.TopicRequest(topic_name=name), metadata=self.metadata, timeout=DEADLINE)

    def schema(self, schema_id: str) -> avro.schema.Schema:
        if schema_id not in self.schemas:
            info = self.stub.GetSchema(
                pb.SchemaRequest(schema_id=schema_id), metadata=self.metadata, timeout=DEADLINE
            )
            self.schemas[schema_id] = avro.schema.parse(info.schema_json)
        return self.schemas[schema_id]

    def decode(self, event: pb.ConsumerEvent) -> dict[str, Any]:
        schema = self.schema(event.event.schema_id)
        reader = avro.io.DatumReader(schema)
        record: dict[str, Any] = reader.read(avro.io.BinaryDecoder(io.BytesIO(event.event.payload)))  # type: ignore[assignment]
        return record

    def changed_names(self, event: pb.ConsumerEvent, key: str = "changedFields") -> list[str]:
        """The field names of a bitmap (§5.1: hex `0x...`, bit i is the schema's field i)."""
        bitmaps = self.decode(event)["ChangeEventHeader"][key]
        fields = self.schema(event.event.schema_id).fields  # type: ignore[attr-defined]
        names: list[str] = []
        for bitmap in bitmaps:
            bits = int(bitmap, 16)
            names += [field.name for index, field in enumerate(fields) if bits >> index & 1]
        return names

    def subscribe(self, topic: str, num_requested: int, **replay: Any) -> Subscription:
        return Subscription(self, pb.FetchRequest(topic_name=topic, num_requested=num_requested, **replay))


class Subscription:
    """One Subscribe stream: requests go in through a queue, responses come out through another
    (a thread reads the stream), so a test can ask for more and wait for what arrives."""

    def __init__(self, client: Client, first: pb.FetchRequest) -> None:
        self.client = client
        self._requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        self._requests.put(first)
        self.responses: queue.Queue[pb.FetchResponse | grpc.RpcError | None] = queue.Queue()
        self.call = client.stub.Subscribe(self._request_iterator(), metadata=client.metadata)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _request_iterator(self) -> Iterator[pb.FetchRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def _read(self) -> None:
        try:
            for response in self.call:
                self.responses.put(response)
            self.responses.put(None)  # the stream ended
        except grpc.RpcError as error:
            self.responses.put(error)

    def request(self, count: int) -> None:
        self._requests.put(pb.FetchRequest(num_requested=count))

    def next(self, timeout: float = DEADLINE) -> pb.FetchResponse:
        """The next response; fails on an error or the end of the stream."""
        item = self.responses.get(timeout=timeout)
        if item is None or isinstance(item, grpc.RpcError):
            raise AssertionError(f"the stream ended: {item!r}")
        return item

    def next_event_response(self, timeout: float = DEADLINE) -> pb.FetchResponse:
        """The next response carrying events (keepalives in between are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.next(max(0.1, deadline - time.monotonic()))
            if response.events:
                return response

    def events(self, count: int, timeout: float = DEADLINE) -> list[pb.ConsumerEvent]:
        """Exactly the next `count` events (across responses)."""
        events: list[pb.ConsumerEvent] = []
        deadline = time.monotonic() + timeout
        while len(events) < count:
            events += self.next_event_response(max(0.1, deadline - time.monotonic())).events
        assert len(events) == count, f"asked for {count}, got {len(events)}"
        return events

    def error(self, timeout: float = DEADLINE) -> grpc.RpcError:
        """The error that ends the stream (responses before it are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.responses.get(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(item, grpc.RpcError):
                return item
            if item is None:
                raise AssertionError("the stream ended without an error")

    def ended(self, timeout: float = DEADLINE) -> None:
        """Wait for the stream to end cleanly (responses before it are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.responses.get(timeout=max(0.1, deadline - time.monotonic()))
            if item is None:
                return
            if isinstance(item, grpc.RpcError):
                raise AssertionError(f"the stream failed: {item!r}")

    def close(self) -> None:
        self._requests.put(None)
        self.call.cancel()
        self._thread.join(timeout=DEADLINE)


def decoded_header(client: Client, event: pb.ConsumerEvent) -> dict[str, Any]:
    return dict(client.decode(event)["ChangeEventHeader"])


def schema_field_names(schema_json: str) -> list[str]:
    return [field["name"] for field in json.loads(schema_json)["fields"]]
