"""Where webhooks may go: refused when saved and again at connect time (DNS can change)."""

from __future__ import annotations

import socket

import pytest

from campaigns.models import Delivery, DeliveryStatus
from campaigns.receiver import Receiver
from campaigns.services import campaign_save
from campaigns.targets import UnsafeTarget, url_check
from campaigns.webhooks import attempt, sample_delivery_create
from smartlists.validation import DefinitionError

REFUSED = [
    ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
    ("http://10.0.0.1/hook", "10.0.0.1 is a private or internal address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[::1]:8080/hook", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/hook", "is a loopback address"),
    ("http://localhost:9/hook", "localhost resolves to"),
    ("http://0.0.0.0/", "is not an address a web server listens on"),
    ("ftp://example.com/", "must be an http:// or https:// URL"),
    ("http://user:pw@93.184.216.34/", "must not carry a user name or password"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_private_loopback_link_local_and_metadata_targets_are_refused(settings, url, message):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(UnsafeTarget) as refused:
        url_check(url)
    assert message in str(refused.value)


def test_a_public_address_is_accepted_and_the_setting_allows_loopback_but_never_metadata(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    url_check("https://93.184.216.34/hook")
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    url_check("http://127.0.0.1:8025/hook")
    url_check("http://10.0.0.1/hook")
    with pytest.raises(UnsafeTarget, match="link-local"):
        url_check("http://169.254.169.254/")


@pytest.mark.django_db
def test_saving_a_campaign_with_a_refused_url_names_the_field(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(DefinitionError) as error:
        campaign_save(
            campaign=None,
            data={
                "name": "x",
                "triggers": [{"trigger": "added_to_opportunity"}],
                "webhook": {"url": "http://127.0.0.1/"},
            },
        )
    assert "loopback" in error.value.errors["webhook.url"][0]


@pytest.mark.django_db
def test_a_name_that_resolves_elsewhere_at_connect_time_is_refused_then(settings, monkeypatch):
    """DNS rebinding: the name was public when saved and points at loopback when sent."""
    receiver = Receiver().start()
    try:
        settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
        port = receiver.server.server_address[1]
        real = socket.getaddrinfo
        answers = {"hooks.example.com": "93.184.216.34"}

        def fake_dns(host, *args, **kwargs):
            if host in answers:
                return real(answers[host], *args, **kwargs)
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
        campaign, _ = campaign_save(
            campaign=None,
            data={
                "name": "Rebinding",
                "triggers": [{"trigger": "added_to_opportunity"}],
                "webhook": {"url": f"http://hooks.example.com:{port}/hook"},
            },
        )
        answers["hooks.example.com"] = "127.0.0.1"  # the name now points at this machine
        delivery = sample_delivery_create(campaign)
        assert attempt(delivery.pk) is None
        delivery = Delivery.objects.get(pk=delivery.pk)
        assert delivery.status == DeliveryStatus.FAILED
        [error] = delivery.attempts.values_list("error", flat=True)
        assert error.startswith(
            "refused: hooks.example.com resolves to 127.0.0.1, which is a loopback address"
        )
        assert receiver.requests == 0  # nothing reached the internal address
    finally:
        receiver.stop()


@pytest.mark.django_db
def test_redirects_are_not_followed(settings):
    import http.server
    import threading

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.WEBHOOK_MAX_ATTEMPTS = 1
        campaign, _ = campaign_save(
            campaign=None,
            data={
                "name": "Redirect",
                "triggers": [{"trigger": "added_to_opportunity"}],
                "webhook": {"url": f"http://127.0.0.1:{server.server_address[1]}/"},
            },
        )
        delivery = sample_delivery_create(campaign)
        attempt(delivery.pk)
        [(code, error)] = Delivery.objects.get(pk=delivery.pk).attempts.values_list("status_code", "error")
        assert code == 302 and "redirects are not followed" in error
    finally:
        server.shutdown()
        server.server_close()
