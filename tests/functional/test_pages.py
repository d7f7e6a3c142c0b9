"""The three public pages (the operator console, the integrator portal, the customer's tracking page) and their
files, each through the route that serves it: its content type, caching by revalidation, the same strict headers
on every answer (a 304 too), each page's own Content-Security-Policy, and the service's JSON 404 for a file that
was not shipped."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
WEBSOCKET_URL = "wss://abc123.execute-api.us-east-1.amazonaws.com/api"
# The tracking page may also reach the WebSocket API's origin (no path), and nothing else.
TRACKING_POLICY = POLICY.replace(
    "connect-src 'self'", "connect-src 'self' wss://abc123.execute-api.us-east-1.amazonaws.com"
)
STRICT = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
HTML, JAVASCRIPT, CSS = "text/html; charset=utf-8", "text/javascript; charset=utf-8", "text/css; charset=utf-8"

# (page, its policy, its script, its stylesheet): every page's files are served beside the console's.
PAGES = [
    ("/console", POLICY, "/console/console.js", "/console/console.css"),
    ("/portal", POLICY, "/console/portal.js", "/console/portal.css"),
    ("/track", TRACKING_POLICY, "/console/track.js", "/console/track.css"),
]


def _headers(response: Any, *names: str) -> dict[str, str]:
    return {name: response.headers.get(name) for name in names}


@pytest.fixture
def pages(api: Api, configure: Any) -> Api:
    configure(TRACKING_WEBSOCKET_URL=WEBSOCKET_URL)
    return api


@pytest.mark.parametrize(("page", "policy", "script", "style"), PAGES)
def test_a_page_and_its_files_answer_with_their_type_and_the_strict_headers(
    pages: Api, page: str, policy: str, script: str, style: str
) -> None:
    files = ((page, HTML, policy), (script, JAVASCRIPT, POLICY), (style, CSS, POLICY))
    for path, content_type, expected_policy in files:
        response = pages.get(path, token="")
        assert response.status_code == 200, path
        assert response.body, path
        expected = {"Content-Type": content_type, "Content-Security-Policy": expected_policy, **STRICT}
        assert _headers(response, *expected) == expected, path
        assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"'), path


@pytest.mark.parametrize(("page", "policy", "script", "style"), PAGES)
def test_an_unchanged_page_answers_304_with_no_body_and_the_same_headers(
    pages: Api, page: str, policy: str, script: str, style: str
) -> None:
    first = pages.get(page, token="")
    again = pages.get(page, token="", headers={"If-None-Match": f'W/{first.headers["ETag"]}, "older"'})
    assert again.status_code == 304 and again.body == b""
    expected = {"ETag": first.headers["ETag"], "Content-Security-Policy": policy, **STRICT}
    assert _headers(again, *expected) == expected
    assert pages.get(page, token="", headers={"If-None-Match": '"older"'}).status_code == 200


def test_a_file_that_was_not_shipped_is_a_json_404_naming_it(pages: Api) -> None:
    response = pages.get("/console/track.htm", token="")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json_body["error"] == {
        "code": "not_found",
        "message": "no console file named 'track.htm'",
        "details": [],
    }
