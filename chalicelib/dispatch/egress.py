"""The HTTP session every call to an integrator (and its OAuth2 token endpoint) goes through.

Two guarantees a plain `requests.Session` lacks:
- Connections go only to checked public addresses: each new connection resolves the host once, refuses it when
  any address is internal (`integrators.url_policy`), and connects to one of exactly those addresses, so DNS
  rebinding between the check and the connect cannot swap them. TLS still verifies the certificate and SNI
  against the host name. The local stack (ALLOW_LOOPBACK_INTEGRATORS) connects as usual.
- A call has a total deadline: per-read timeouts restart at every byte, so a partner that trickles its answer
  could hold a dispatcher for its whole Lambda timeout. A timer shuts the call's sockets down when the deadline
  passes, wherever the call is (connect, headers, body).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from chalicelib.integrators.url_policy import BlockedAddress, resolve_public
from chalicelib.settings import get_settings

_active = threading.local()


class Deadline:
    """Shuts down every socket the current call uses once `seconds` have passed."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Bound every request made on this thread inside the block to `seconds` in total."""
    current = Deadline(seconds)
    _active.deadline = current
    current._timer.start()
    try:
        yield current
    finally:
        current._timer.cancel()
        _active.deadline = None


def _attach(sock: socket.socket | None) -> None:
    current: Deadline | None = getattr(_active, "deadline", None)
    if current is not None:
        current.attach(sock)


class _GuardedMixin:
    """Connection behaviour shared by the http and https classes (urllib3 2.x `_new_conn` and `request`)."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        if get_settings().allow_loopback_integrators:
            sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        else:
            sock = self._connect_checked()
        _attach(sock)
        return sock

    def _connect_checked(self) -> socket.socket:
        host = self._dns_host  # type: ignore[attr-defined]
        try:
            addresses = resolve_public(host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(host, self, exc) from exc  # type: ignore[arg-type]
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        last: OSError | None = None
        for address in addresses:
            try:
                sock = socket.create_connection((str(address), self.port), timeout, self.source_address)
            except OSError as exc:
                last = exc
                continue
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            return sock
        # Chained, so that what kind of failure it was can be told from types (dispatch.failures), not this text.
        raise NewConnectionError(self, f"failed to connect to {host}: {last}") from last  # type: ignore[arg-type]

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _attach(self.sock)  # a kept-alive connection joins the current call's deadline too
        return super().request(*args, **kwargs)  # type: ignore[misc]


class GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def read_capped(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of a streamed body (undecoded: no decompression bomb), and whether there was more.
    The response is closed: a partner sending more than asked for never holds the connection."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            chunk = response.raw.read(8192, decode_content=False)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        response.close()
    return b"".join(chunks)[:limit], size > limit


@cache
def session() -> requests.Session:
    """One per container: connections to each integrator are kept alive between invocations."""
    http = requests.Session()
    adapter = GuardedAdapter(pool_connections=16, pool_maxsize=64, max_retries=0)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


__all__ = ["BlockedAddress", "Deadline", "deadline", "read_capped", "session"]
