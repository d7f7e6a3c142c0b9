"""The one way the service's pages and their files are answered: a shipped file (chalicelib/console/assets.py reads
it and sets its caching and security headers) as a Chalice response, or the service's JSON 404 for a name that is
not on the allow-list. The console, the portal and the tracking page all come through here, so their headers
cannot drift apart; a page that needs a wider policy (tracking's WebSocket origin) passes its own."""

from __future__ import annotations

from chalice.app import Request, Response

from chalicelib.api.http import error_response, header
from chalicelib.console.assets import serve
from chalicelib.errors import NotFound


def file_response(request: Request, name: str, *, policy: str | None = None) -> Response:
    """`name` from the allow-list (a 304 where the browser's copy is current); `policy` replaces the default
    Content-Security-Policy, on the 304 as well."""
    served = serve(name, header(request, "if-none-match"))
    if served is None:
        return error_response(NotFound(f"no console file named {name!r}"))
    headers: dict[str, str | list[str]] = dict(served.headers)
    if policy is not None:
        headers["Content-Security-Policy"] = policy
    return Response(body=served.body, status_code=served.status, headers=headers)
