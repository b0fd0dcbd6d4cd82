"""Where a webhook may be sent: never to this machine's network, its cloud metadata service or any
other address that is not public, unless `WEBHOOKS_ALLOW_PRIVATE_TARGETS` allows loopback and
private networks (tests, the demo receiver).

A URL is checked when a campaign is saved *and* at connect time: the connection is opened to an
address checked the moment it was resolved, so a DNS answer that changes after the save (DNS
rebinding) cannot reach an internal address. Redirects are never followed and proxies from the
environment are ignored (either would bypass the check)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import threading
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.util.timeout import Timeout

logger = logging.getLogger(__name__)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The webhook URL points somewhere OppSync must not send requests."""


class RefusedConnection(NewConnectionError):
    """A connect refused by the address check (urllib3 wraps it; `detail` says why)."""

    def __init__(self, conn: Any, detail: str) -> None:
        super().__init__(conn, f"Refused webhook target: {detail}")
        self.detail = detail


def address_refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why an address is refused ("a loopback address ..."), or None when it may be used."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_link_local:
        # 169.254.169.254 is every cloud's metadata service: never, whatever the setting says.
        return "a link-local address (where cloud metadata services answer); never allowed"
    if ip.is_unspecified or ip.is_multicast or (ip.is_reserved and not ip.is_loopback):
        return "not an address a web server listens on"
    if ip.is_global:
        return None
    if allow_private and (ip.is_loopback or ip.is_private):
        return None
    kind = "a loopback address" if ip.is_loopback else "a private or internal address"
    return f"{kind}; webhooks go to public addresses only (WEBHOOKS_ALLOW_PRIVATE_TARGETS=true allows it)"


def resolve_checked(host: str, port: int, *, allow_private: bool | None = None) -> list[tuple[Any, ...]]:
    """Resolve `host` and refuse it if any address it resolves to is refused (a name with one
    public and one internal address is refused as a whole). Returns getaddrinfo's entries."""
    if allow_private is None:
        allow_private = settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS
    try:
        entries = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeTarget(f"{host} does not resolve ({error})") from error
    for entry in entries:
        ip = ipaddress.ip_address(str(entry[4][0]).split("%", 1)[0])
        reason = address_refusal(ip, allow_private=allow_private)
        if reason:
            where = host if host == str(ip) else f"{host} resolves to {ip}, which"
            raise UnsafeTarget(f"{where} is {reason}")
    return entries


def url_check(url: str, *, resolve: bool = True) -> None:
    """Refuse a webhook URL that is not http(s) or points at a refused address."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as error:  # "Invalid IPv6 URL" for http://[::1/x, and the like
        raise UnsafeTarget(f"is not a valid URL ({error})") from error
    if parts.scheme not in ("http", "https") or not hostname:
        raise UnsafeTarget("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeTarget("must not carry a user name or password; use a header or the signature")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise UnsafeTarget(f"has an invalid port ({error})") from error
    if resolve:
        resolve_checked(hostname, port)


class AttemptDeadline:
    """A total deadline for one webhook attempt: connect, send, status line, headers and body.

    Read timeouts count per receive, so a receiver trickling a byte at a time never trips them.
    While the attempt runs (`with AttemptDeadline(seconds):` in the thread making the request),
    the connections it uses are watched; when the deadline passes, a watchdog thread shuts their
    sockets down, which ends any blocking receive at once (and again every 0.2 s, in case one was
    being opened at that moment), so the attempt ends within the deadline whatever the receiver
    does. `expired` says whether it was cut."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []  # duplicates: the same connections, our own fds
        self._watchdog = threading.Thread(target=self._watch, name="webhook-deadline", daemon=True)

    def __enter__(self) -> AttemptDeadline:
        _attempt.deadline = self
        self._watchdog.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        _attempt.deadline = None
        self._done.set()
        self._watchdog.join()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def watch(self, sock: socket.socket | None) -> None:
        """Cut this socket's connection too when the deadline passes. A duplicate of the file
        descriptor is kept (`os.dup`: `ssl.SSLSocket.dup()` does not exist): shutting it down ends
        the connection even after TLS has wrapped (and detached) the original socket object, and
        it is never some later socket reusing the fd. Never raises: an attempt must not fail
        because it could not be watched (it is then logged; its per-read timeouts still hold)."""
        try:
            if sock is None or sock.fileno() < 0:
                return
            duplicate = socket.socket(fileno=os.dup(sock.fileno()))
        except Exception:
            logger.warning("A webhook connection could not be watched for its deadline", exc_info=True)
            return
        with self._lock:
            self._sockets.append(duplicate)
        if self.expired:
            self._cut()

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.expired = True
        while True:
            self._cut()
            if self._done.wait(0.2):
                return

    def _cut(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # not connected yet, or closed already
                    sock.shutdown(socket.SHUT_RDWR)


class _AttemptState(threading.local):
    deadline: AttemptDeadline | None = None


_attempt = _AttemptState()


def _watch_socket(sock: socket.socket | None) -> None:
    deadline = _attempt.deadline
    if deadline is not None:
        deadline.watch(sock)


class _CheckedConnectMixin:
    """Open the socket to an address checked at this moment (not the name urllib3 would resolve
    again), so a name cannot be re-pointed between the check and the connect."""

    host: str
    port: int
    timeout: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            entries = resolve_checked(self.host.strip("[]"), self.port)
        except UnsafeTarget as error:
            raise RefusedConnection(self, str(error)) from error
        timeout = self.timeout
        seconds = timeout if isinstance(timeout, int | float) else Timeout.DEFAULT_TIMEOUT
        last_error: OSError | None = None
        for family, kind, proto, _, address in entries:
            sock = socket.socket(family, kind, proto)
            try:
                if isinstance(seconds, int | float):
                    sock.settimeout(seconds)
                _watch_socket(sock)  # before connecting: a slow connect is cut too
                sock.connect(address)
                return sock
            except OSError as error:
                sock.close()
                last_error = error
        raise NewConnectionError(self, f"Failed to connect: {last_error}")  # type: ignore[arg-type]


class _CheckedHTTPConnection(_CheckedConnectMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnectMixin, HTTPSConnection):
    pass


class _FreshConnectionPoolMixin:
    """Never reuse a connection: webhooks are sent with `Connection: close`, and should a
    receiver keep the connection open anyway, it is closed here, so every attempt connects
    anew through `_new_conn`, where its socket is watched from before the connect (a kept-alive
    socket, TLS-wrapped already, would escape the attempt's deadline)."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        if getattr(conn, "sock", None) is not None:
            conn.close()
        return conn


class _CheckedHTTPPool(_FreshConnectionPoolMixin, HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(_FreshConnectionPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


def webhook_session() -> requests.Session:
    """A requests session for webhooks: checked connects, no proxies from the environment."""
    session = requests.Session()
    session.trust_env = False
    adapter = CheckedAdapter(max_retries=0, pool_connections=4, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
