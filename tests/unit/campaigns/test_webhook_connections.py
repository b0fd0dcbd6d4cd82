"""Webhook attempts over a TLS receiver that keeps connections alive, and attempts that fail in a
way nobody expected: each attempt is logged and counted, none crashes the task or loops forever."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from campaigns import webhooks
from campaigns.models import Campaign, Delivery, DeliveryStatus
from campaigns.targets import webhook_session
from campaigns.webhooks import attempt, sample_delivery_create

pytestmark = pytest.mark.django_db
SECRET = "whsec_connections_test_secret"


class KeepAliveTLSReceiver:
    """An HTTPS receiver answering 200 and keeping every connection open, even when the client
    asks to close it (a receiver behind a proxy that ignores `Connection: close`). It notes the
    client port of each request: one port per connection."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ports: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.ports.append(self.client_address[1])
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                self.close_connection = False  # kept alive whatever the request said

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch) -> Iterator[KeepAliveTLSReceiver]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    session = webhook_session()
    session.verify = str(ca_file)
    monkeypatch.setattr(webhooks, "_session", session)  # one session: its pool, as in a worker
    receiver = KeepAliveTLSReceiver(ca)
    yield receiver
    receiver.stop()
    session.close()


def _delivery(url: str, headers: dict[str, str] | None = None) -> Delivery:
    campaign = Campaign.objects.create(
        name="Connections",
        triggers=[{"trigger": "added_to_opportunity"}],
        webhook_url=url,
        webhook_secret=SECRET,
        webhook_headers=headers or {},
    )
    return sample_delivery_create(campaign)


def test_attempts_in_a_row_over_a_kept_alive_tls_connection_each_succeed(tls_receiver):
    """Before the fix the second attempt reused the pooled TLS connection, whose socket the
    deadline watcher tried to `dup()`: NotImplementedError, the task crashed, no attempt logged."""
    first, second, third = (_delivery(tls_receiver.url) for _ in range(3))
    for delivery in (first, second, third):
        assert attempt(delivery.pk) is None
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SUCCEEDED, list(delivery.attempts.values("error"))
        [logged] = delivery.attempts.all()
        assert logged.status_code == 200 and logged.error == ""
    # Never reused: each attempt had its own connection, watched from its connect.
    assert len(set(tls_receiver.ports)) == 3


def test_an_attempt_that_fails_unexpectedly_is_a_counted_failed_attempt(tls_receiver, settings):
    """A header value http.client cannot encode (saved before validation refused it) raised
    UnicodeEncodeError out of the attempt: retried forever, never counted. Now it is a failed
    attempt with the error's kind and words, and the delivery fails after its attempts."""
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    delivery = _delivery(tls_receiver.url, {"Authorization": "Bearer café✓"})

    assert attempt(delivery.pk) is not None  # a retry is due
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
    assert attempt(delivery.pk) is None

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 2
    errors = list(delivery.attempts.values_list("error", flat=True))
    assert len(errors) == 2 and all(e.startswith("UnicodeEncodeError: ") and "latin-1" in e for e in errors)
    assert tls_receiver.ports == []
