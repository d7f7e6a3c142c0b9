"""API Gateway's WebSocket API for the local stack (`chalice local` has none): the same Chalice handlers, called
with API Gateway's event shapes, and the `@connections` management API they post to.

- `ws://host:port/<stage>?token=...`: `$connect` gets the query string and may refuse (any status but 200 fails
  the handshake with 403, as API Gateway answers); each text message is a `$default` event; a close from either
  side is a `$disconnect`. API Gateway's limits are kept: a connection is closed after `max_seconds` (2 hours) and
  after `idle_seconds` without a message (10 minutes), both settable for tests.
- `http://host:management_port/<stage>/@connections/{id}`: POST sends a frame (413 past 128 KB), GET describes the
  connection, DELETE closes it; an unknown connection answers 410 with `x-amzn-ErrorType: GoneException`, which
  botocore raises as `GoneException`. Frames posted while `$connect` is still running are held and sent once
  the handshake completes (a watcher row can exist a moment before its socket does).

Built on the `websockets` package (a development dependency: this module never ships in the Lambda package).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

MAX_FRAME_BYTES = 128 * 1024
API_ID = "local"


class LocalWebsocketApi:
    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        management_port: int = 0,
        stage: str = "local",
        idle_seconds: float = 600,
        max_seconds: float = 7200,
        on_error: Any = None,
    ) -> None:
        self.app, self.host, self.stage = app, host, stage
        self.idle_seconds, self.max_seconds = idle_seconds, max_seconds
        self._ports = (port, management_port)
        self._on_error = on_error
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._open: dict[str, ServerConnection] = {}
        self._held: dict[str, list[str]] = {}  # connections whose $connect is still running
        self._ids: dict[ServerConnection, str] = {}
        self._active: dict[str, float] = {}
        self._connected_at: dict[str, float] = {}
        self.port = 0
        self.management_port = 0

    # --- addresses -----------------------------------------------------------------------------------------------

    @property
    def websocket_url(self) -> str:
        return f"ws://{self.host}:{self.port}/{self.stage}"

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}/{self.stage}"

    def connection_ids(self) -> list[str]:
        return list(self._open)

    # --- life ----------------------------------------------------------------------------------------------------

    def start(self) -> LocalWebsocketApi:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)

            async def begin() -> None:
                self._server = await serve(
                    self._serve, self.host, self._ports[0], process_request=self._connect, compression=None
                )
                self.port = int(next(iter(self._server.sockets)).getsockname()[1])
                ready.set()

            self._loop.run_until_complete(begin())
            self._loop.run_forever()

        threading.Thread(target=run, name="websocket-api", daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("the local WebSocket API did not start")
        self._http = ThreadingHTTPServer((self.host, self._ports[1]), _management_handler(self))
        self._http.daemon_threads = True
        self.management_port = int(self._http.server_address[1])
        threading.Thread(target=self._http.serve_forever, name="websocket-management", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    # --- the handlers --------------------------------------------------------------------------------------------

    def _context(self, route: str, connection_id: str, kind: str) -> dict[str, Any]:
        return {
            "routeKey": route,
            "eventType": kind,
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": int(self._connected_at.get(connection_id, time.time()) * 1000),
            "requestTimeEpoch": int(time.time() * 1000),
            "requestId": uuid.uuid4().hex,
            "extendedRequestId": uuid.uuid4().hex,
            "domainName": f"{self.host}:{self.port}",
            "connectionId": connection_id,
            "apiId": API_ID,
        }

    def _call(self, route: str, event: dict[str, Any]) -> dict[str, Any]:
        """Run the app's handler for `route` as Lambda would (its failure is a 500, as API Gateway reports)."""
        from tools.poller import lambda_context

        config = self.app.websocket_handlers.get(route)
        if config is None:
            return {"statusCode": 200}
        try:
            answer = self.app.handler_map[config.name](event, lambda_context(config.name))
        except Exception as exc:  # noqa: BLE001 - a failing handler must not stop the gateway
            if self._on_error is not None:
                self._on_error(route, exc)
            return {"statusCode": 500}
        return answer if isinstance(answer, dict) else {"statusCode": 200}

    async def _connect(self, connection: ServerConnection, request: Request) -> Response | None:
        connection_id = base64.b64encode(secrets.token_bytes(10)).decode()
        query = dict(parse_qsl(urlsplit(request.path).query))
        headers = dict(request.headers.raw_items())
        self._held[connection_id] = []
        self._connected_at[connection_id] = time.time()
        event = {
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
            "requestContext": self._context("$connect", connection_id, "CONNECT"),
            "isBase64Encoded": False,
        }
        answer = await asyncio.to_thread(self._call, "$connect", event)
        if int(answer.get("statusCode", 200)) != 200:
            self._held.pop(connection_id, None)
            self._connected_at.pop(connection_id, None)
            return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
        self._ids[connection] = connection_id
        return None

    async def _serve(self, connection: ServerConnection) -> None:
        connection_id = self._ids.pop(connection)
        self._open[connection_id] = connection
        self._active[connection_id] = time.monotonic()
        reason = "client closed"
        try:
            for frame in self._held.pop(connection_id, []):
                await connection.send(frame)
            deadline = time.monotonic() + self.max_seconds
            while True:
                idle_left = self._active[connection_id] + self.idle_seconds - time.monotonic()
                wait = min(idle_left, deadline - time.monotonic())
                if wait <= 0:
                    reason = "idle timeout" if idle_left <= 0 else "maximum connection duration"
                    await connection.close(1001, "Going away")
                    break
                try:
                    message = await asyncio.wait_for(connection.recv(), timeout=wait)
                except TimeoutError:
                    continue
                self._active[connection_id] = time.monotonic()
                context = self._context("$default", connection_id, "MESSAGE")
                event = {
                    "requestContext": {**context, "messageId": uuid.uuid4().hex},
                    "body": message if isinstance(message, str) else message.decode(errors="replace"),
                    "isBase64Encoded": False,
                }
                await asyncio.to_thread(self._call, "$default", event)
        except ConnectionClosed:
            pass
        finally:
            self._open.pop(connection_id, None)
            self._active.pop(connection_id, None)
            self._held.pop(connection_id, None)
            event = {
                "headers": {},
                "requestContext": {
                    **self._context("$disconnect", connection_id, "DISCONNECT"),
                    "disconnectStatusCode": connection.close_code or 1006,
                    "disconnectReason": reason,
                },
                "isBase64Encoded": False,
            }
            self._connected_at.pop(connection_id, None)
            await asyncio.to_thread(self._call, "$disconnect", event)

    # --- @connections --------------------------------------------------------------------------------------------

    def _on_loop(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def post(self, connection_id: str, data: bytes) -> bool:
        async def send() -> bool:
            text = data.decode(errors="replace")
            if connection_id in self._held:
                self._held[connection_id].append(text)
                return True
            connection = self._open.get(connection_id)
            if connection is None:
                return False
            try:
                await connection.send(text)
            except ConnectionClosed:
                return False
            self._active[connection_id] = time.monotonic()
            return True

        return bool(self._on_loop(send()))

    def close(self, connection_id: str) -> bool:
        """Close a connection from the server's side (DELETE @connections/{id}; tests use it to drop a page)."""

        async def close() -> bool:
            connection = self._open.get(connection_id)
            if connection is None:
                return False
            await connection.close(1000, "closed by the service")
            return True

        return bool(self._on_loop(close()))

    def info(self, connection_id: str) -> dict[str, Any] | None:
        if connection_id not in self._open:
            return None
        return {
            "ConnectedAt": self._connected_at.get(connection_id, time.time()),
            "LastActiveAt": time.time(),
            "Identity": {"SourceIp": self.host, "UserAgent": "local"},
        }


class _Management(BaseHTTPRequestHandler):
    """`@connections/{id}` of one LocalWebsocketApi (bound by `_management_handler`)."""

    protocol_version = "HTTP/1.1"
    api: LocalWebsocketApi

    def log_message(self, *args: Any) -> None:
        return

    def _answer(self, status: int, body: dict[str, Any] | None = None, error: str | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(data)

    def _connection_id(self) -> str | None:
        prefix = f"/{self.api.stage}/@connections/"
        path = urlsplit(self.path).path
        return unquote(path[len(prefix) :]) if path.startswith(prefix) else None

    def _gone(self) -> None:
        self._answer(410, {"message": "the connection is gone"}, "GoneException")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        connection_id = self._connection_id()
        if connection_id is None:
            self._answer(404, {"message": "Not Found"})
        elif len(data) > MAX_FRAME_BYTES:
            self._answer(413, {"message": "frame larger than 128 KB"}, "PayloadTooLargeException")
        elif self.api.post(connection_id, data):
            self._answer(200)
        else:
            self._gone()

    def do_GET(self) -> None:  # noqa: N802
        connection_id = self._connection_id()
        info = self.api.info(connection_id) if connection_id else None
        if info is None:
            self._gone()
        else:
            self._answer(200, info)

    def do_DELETE(self) -> None:  # noqa: N802
        connection_id = self._connection_id()
        if connection_id and self.api.close(connection_id):
            self._answer(204)
        else:
            self._gone()


def _management_handler(api: LocalWebsocketApi) -> type[BaseHTTPRequestHandler]:
    return type("Management", (_Management,), {"api": api})
