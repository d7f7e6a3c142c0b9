"""The local stack's API Gateway stand-in (tools/local_gateway.py) overrides internals of `chalice.local`. These
tests pin what it relies on and check what it must answer, so a Chalice upgrade that moves an internal fails
here, with its name, instead of a demo that silently answers 501 pages or HTML errors."""

from __future__ import annotations

import http.client
import inspect
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.app import AuthRequest, AuthResponse, Chalice
from chalice.local import ChaliceRequestHandler, LocalDevServer, LocalGatewayException, NotAuthorizedError

from tools.local_gateway import REFUSALS, GatewayRequestHandler, serve_api


@pytest.mark.parametrize(
    ("name", "parameters"),
    [("_send_error_response", ["self", "error"]), ("_parse_payload", ["self"]), ("_send_http_response", None)],
)
def test_the_chalice_local_methods_the_gateway_overrides_or_calls_still_exist(
    name: str, parameters: list[str] | None
) -> None:
    method = getattr(ChaliceRequestHandler, name, None)
    assert callable(method), f"chalice.local.ChaliceRequestHandler.{name} is gone"
    if parameters is not None:
        assert list(inspect.signature(method).parameters) == parameters


def test_the_chalice_local_errors_and_server_shape_are_as_relied_on() -> None:
    assert issubclass(NotAuthorizedError, LocalGatewayException)
    assert "headers" in inspect.signature(LocalGatewayException.__init__).parameters
    assert "server" in inspect.getsource(LocalDevServer.__init__), "create_local_server(...).server is used"
    assert issubclass(GatewayRequestHandler, ChaliceRequestHandler)


@pytest.fixture
def served() -> Iterator[int]:
    app = Chalice(app_name="gateway-pin")

    @app.authorizer()
    def auth(request: AuthRequest) -> AuthResponse:
        return AuthResponse(routes=["/open"] if request.token == "Bearer good" else [], principal_id="p")

    @app.route("/open", authorizer=auth)
    def open_route() -> dict[str, Any]:
        return {"ok": True}

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = serve_api(app, port, project_dir=_empty_project())
    try:
        yield port
    finally:
        server.server.shutdown()
        server.server.server_close()


def _empty_project() -> Any:
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    (folder / ".chalice").mkdir()
    (folder / ".chalice" / "config.json").write_text('{"version": "2.0", "app_name": "gateway-pin"}')
    return folder


def _ask(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, json.loads(body) if body else None


def test_refusals_answer_in_the_service_error_shape(served: int) -> None:
    assert _ask(served, "GET", "/open", {"Authorization": "Bearer good"}) == (200, {"ok": True})
    status, body = _ask(served, "GET", "/open")
    assert (status, body["error"]["code"]) == REFUSALS["UNAUTHORIZED"][:2]
    status, body = _ask(served, "GET", "/open", {"Authorization": "Bearer bad"})
    assert (status, body["error"]["code"]) == REFUSALS["ACCESS_DENIED"][:2]


def test_a_method_api_gateway_never_routes_is_refused_like_a_missing_route(served: int) -> None:
    status, body = _ask(served, "TRACE", "/open")
    assert (status, body["error"]["code"]) == REFUSALS["MISSING_AUTHENTICATION_TOKEN"][:2]
