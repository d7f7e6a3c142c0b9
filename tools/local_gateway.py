"""API Gateway's behaviour on `chalice local`'s server, for the local stack: the gateway's own refusals in the
service's error shape (as the packaged API answers them through its gateway responses), methods API Gateway never
routes refused the way it refuses them, and chunked bodies that cannot be framed closing their connection.

This leans on internals of `chalice.local` (1.34): `ChaliceRequestHandler._send_error_response`, `_parse_payload`,
`_send_http_response`, and `create_local_server(...).server`. tests/unit/test_local_gateway.py pins each of them,
so a Chalice upgrade that moves them fails that test, not the demo.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    LocalDevServer,
    LocalGatewayException,
    NotAuthorizedError,
    create_local_server,
)

from tools.package import GATEWAY_RESPONSES

REFUSALS = {kind: (int(status), code, message) for kind, status, code, message in GATEWAY_RESPONSES}
# The x-amzn-ErrorType chalice.local puts on a refusal, and the gateway response the packaged API uses for it.
REFUSAL_KINDS = {"AccessDeniedException": "ACCESS_DENIED", "UnauthorizedException": "MISSING_AUTHENTICATION_TOKEN"}


def _error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": []}})


class GatewayRequestHandler(ChaliceRequestHandler):  # type: ignore[misc]
    """chalice.local's handler with API Gateway's answers where they differ, and no access log on stderr."""

    def log_message(self, *args: Any) -> None:
        return

    def _send_error_response(self, error: LocalGatewayException) -> None:
        """The gateway's own refusals in the service's error shape, as the packaged API answers them."""
        if isinstance(error, NotAuthorizedError):
            status, code, message = REFUSALS["UNAUTHORIZED"]
        elif error.headers.get("x-amzn-ErrorType") in REFUSAL_KINDS:
            status, code, message = REFUSALS[REFUSAL_KINDS[error.headers["x-amzn-ErrorType"]]]
        else:
            status, code, message = 500, "internal_error", "the authorizer failed"
        self._send_http_response(status, {"Content-Type": "application/json"}, _error_body(code, message))

    def _parse_payload(self) -> Any:
        """A body the handler cannot frame (chunked) closes the connection afterwards: left on a kept-alive
        connection, it would be read as the start of the client's next request."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
        return super()._parse_payload()

    def end_headers(self) -> None:
        if self.close_connection and self.request_version == "HTTP/1.1":
            self.send_header("Connection", "close")
        super().end_headers()

    def _not_routed(self) -> None:
        """Methods API Gateway never routes (TRACE, QUERY, ...) get its refusal, not http.server's 501 page.
        The body is read all the same, so the connection stays usable for the next request."""
        self._parse_payload()
        status, code, message = REFUSALS["MISSING_AUTHENTICATION_TOKEN"]
        self._send_http_response(status, {"Content-Type": "application/json"}, _error_body(code, message))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # http.server looks up do_<METHOD> for any method a client sends
            return self._not_routed
        raise AttributeError(name)


def serve_api(app: Any, port: int, project_dir: Path, host: str = "127.0.0.1") -> LocalDevServer:
    """Serve `app`'s HTTP routes on `host:port` in a daemon thread, behind the gateway's behaviour above."""
    config = Config.create(chalice_stage="local", app_name=app.app_name, project_dir=str(project_dir))
    server = create_local_server(app, config, host, port)
    server.server.RequestHandlerClass = functools.partial(GatewayRequestHandler, app_object=app, config=config)
    threading.Thread(target=server.server.serve_forever, name="api", daemon=True).start()
    return server
