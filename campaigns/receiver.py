"""A small webhook receiver: what the demo runs beside `make run` so a newcomer watches deliveries
arrive, and what the tests and the benchmark post to. It verifies each signature, deduplicates by
idempotency key (as every receiver should) and can be told to fail, hang or trickle."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .payload import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signature_verify

logger = logging.getLogger(__name__)


@dataclass
class Received:
    key: str
    body: dict[str, Any]
    headers: dict[str, str]
    verified: bool
    at: float
    repeat: bool


@dataclass
class Receiver:
    """`secret` verifies signatures (None accepts any). `fail_next` answers that many requests
    with 500 first; `hang_seconds` holds every request that long before answering;
    `trickle_next` answers that many requests with a 500 sent a byte every `trickle_seconds`
    (status line, headers and body: a slow receiver that never trips a per-read timeout).
    `trickles_ended` counts trickled answers finished or cut off by the client."""

    secret: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    fail_next: int = 0
    hang_seconds: float = 0.0
    trickle_next: int = 0
    trickle_seconds: float = 0.2
    trickles_ended: int = 0
    received: list[Received] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}/hooks/oppsync"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def keys(self) -> list[str]:
        with self.lock:
            return [r.key for r in self.received]

    def unique(self) -> dict[str, Received]:
        with self.lock:
            return {r.key: r for r in self.received}


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with receiver.lock:
                receiver.requests += 1
                fail = receiver.fail_next > 0
                if fail:
                    receiver.fail_next -= 1
                trickle = not fail and receiver.trickle_next > 0
                if trickle:
                    receiver.trickle_next -= 1
            if trickle:
                self._trickle()
                return
            if receiver.hang_seconds:
                time.sleep(receiver.hang_seconds)
            if fail:
                self._answer(500, {"error": "told to fail"})
                return
            verified = receiver.secret is None or signature_verify(
                receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), raw, now=int(time.time())
            )
            if not verified:
                self._answer(401, {"error": "bad signature"})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(400, {"error": "not JSON"})
                return
            key = self.headers.get(IDEMPOTENCY_HEADER, "")
            with receiver.lock:
                repeat = any(r.key == key for r in receiver.received)
                receiver.received.append(
                    Received(key, body, dict(self.headers.items()), verified, time.time(), repeat)
                )
            logger.info(
                "Webhook %s%s: %s %s",
                key,
                " (repeat, ignored)" if repeat else "",
                (body.get("activity") or {}).get("type"),
                (body.get("person") or {}).get("email"),
            )
            self._answer(200, {"ok": True, "repeat": repeat})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _trickle(self) -> None:
            data = json.dumps({"error": "told to trickle", "padding": "." * 60}).encode()
            answer = (
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            try:
                for at in range(len(answer)):
                    self.wfile.write(answer[at : at + 1])
                    self.wfile.flush()
                    time.sleep(receiver.trickle_seconds)
            except OSError:
                pass  # the client hung up (its deadline)
            finally:
                self.close_connection = True
                with receiver.lock:
                    receiver.trickles_ended += 1

        def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
            return

    return Handler
