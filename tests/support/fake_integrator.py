"""A real HTTP integrator on loopback for the dispatcher tests: scripted answers per path (status, JSON or raw
body, headers, delay), hangs past a client's timeout, dropped connections, and an OAuth2 token endpoint."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Hang:
    """Answer nothing for `seconds` (longer than the client's read timeout)."""

    seconds: float = 5.0


@dataclass
class CloseConnection:
    """Drop the connection without a response."""


@dataclass
class Trickle:
    """A 200 whose body arrives one byte every `interval` seconds, each byte inside any per-read timeout."""

    interval: float = 0.2
    length: int = 10_000


@dataclass
class Huge:
    """A 200 with a body of `size` bytes, written until the client stops reading."""

    size: int = 50 * 1024 * 1024


Behaviour = Reply | Hang | CloseConnection | Trickle | Huge


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many deliveries connect at once; the default backlog of 5 resets them


class Headers:
    """Case-insensitive header view of one recorded request."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._lower = {k.lower(): v for k, v in items}

    def __getitem__(self, name: str) -> str:
        return self._lower[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._lower.get(name.lower(), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


@dataclass
class Recorded:
    method: str
    path: str
    headers: Headers
    body: bytes
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body)


class FakeIntegrator:
    def __init__(self) -> None:
        self._scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
        self._defaults: dict[str, Behaviour] = {}
        self._recorded: list[Recorded] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._oauth: dict[str, tuple[str, str, int, float]] = {}
        self.valid_tokens: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.streamed_bytes = 0  # body bytes a Trickle or Huge answer got out before the client stopped reading
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                recorded = Recorded("POST", self.path, Headers(list(self.headers.items())), body, time.monotonic())
                with fake._changed:
                    fake._recorded.append(recorded)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    fake._changed.notify_all()
                try:
                    fake._answer(self, recorded)
                finally:
                    with fake._changed:
                        fake.in_flight -= 1

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-integrator", daemon=True)

    # --- lifecycle ---

    def __enter__(self) -> FakeIntegrator:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str = "/orders") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    # --- scripting ---

    def script(self, path: str, *behaviours: Behaviour) -> None:
        """Answers used once each, in order, before the default."""
        self._scripts[path].extend(behaviours)

    def default(self, path: str, behaviour: Behaviour) -> None:
        self._defaults[path] = behaviour

    def oauth2_token_endpoint(
        self,
        path: str = "/oauth/token",
        *,
        client_id: str,
        client_secret: str,
        token_ttl: int = 3600,
        delay: float = 0.0,
    ) -> None:
        self._oauth[path] = (client_id, client_secret, token_ttl, delay)

    # --- inspection ---

    def requests(self, path: str | None = None) -> list[Recorded]:
        with self._changed:
            return [r for r in self._recorded if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 5.0) -> list[Recorded]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.requests(path)) >= count, timeout)
            return self.requests(path)

    # --- answering ---

    def _next(self, path: str) -> Behaviour:
        with self._changed:
            if self._scripts[path]:
                return self._scripts[path].popleft()
        return self._defaults.get(path, Reply(200, json={"ok": True}))

    def _answer(self, handler: BaseHTTPRequestHandler, recorded: Recorded) -> None:
        if recorded.path in self._oauth:
            self._token(handler, recorded)
            return
        behaviour = self._next(recorded.path)
        if isinstance(behaviour, CloseConnection):
            handler.close_connection = True
            handler.connection.close()
            return
        if isinstance(behaviour, Hang):
            self._stopping.wait(behaviour.seconds)
            handler.close_connection = True
            return
        if isinstance(behaviour, Trickle | Huge):
            self._stream(handler, behaviour)
            return
        if behaviour.delay:
            self._stopping.wait(behaviour.delay)
        body = (
            behaviour.body
            if behaviour.body is not None
            else json.dumps(behaviour.json).encode()
            if behaviour.json is not None
            else b""
        )
        handler.send_response(behaviour.status)
        headers = {"Content-Type": "application/json", **behaviour.headers}
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _stream(self, handler: BaseHTTPRequestHandler, behaviour: Trickle | Huge) -> None:
        length = behaviour.length if isinstance(behaviour, Trickle) else behaviour.size
        handler.close_connection = True
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        chunk = b"x" if isinstance(behaviour, Trickle) else b"x" * 65536
        sent = 0
        try:
            while sent < length and not self._stopping.is_set():
                handler.wfile.write(chunk)
                handler.wfile.flush()
                sent += len(chunk)
                with self._changed:
                    self.streamed_bytes += len(chunk)
                if isinstance(behaviour, Trickle):
                    self._stopping.wait(behaviour.interval)
        except OSError:
            return  # the client stopped reading: what a capped reader does

    def _token(self, handler: BaseHTTPRequestHandler, recorded: Recorded) -> None:
        client_id, client_secret, ttl, delay = self._oauth[recorded.path]
        if delay:
            self._stopping.wait(delay)  # a slow token endpoint
        expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        form = parse_qs(recorded.body.decode())
        reply: dict[str, Any]
        if recorded.headers.get("authorization") != expected or form.get("grant_type") != ["client_credentials"]:
            status, reply = 401, {"error": "invalid_client"}
        else:
            token = secrets.token_urlsafe(16)
            with self._changed:
                self.valid_tokens.append(token)
            status, reply = 200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl}
        data = json.dumps(reply).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
