"""The console's routes through chalice.test.Client (the same app object Lambda runs): public, allow-listed,
cacheable by revalidation, and served with a policy that lets the page run only its own files."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.api import Api

FILES = {
    "/console": "text/html; charset=utf-8",
    "/console/console.js": "text/javascript; charset=utf-8",
    "/console/api.js": "text/javascript; charset=utf-8",
    "/console/dom.js": "text/javascript; charset=utf-8",
    "/console/console.css": "text/css; charset=utf-8",
    "/console/icon.svg": "image/svg+xml",
}


@pytest.mark.parametrize(("path", "content_type"), FILES.items())
def test_each_file_is_public_with_its_type_and_security_headers(api: Api, path: str, content_type: str) -> None:
    response = api.get(path, token="")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy


def test_the_page_loads_only_relative_files(api: Api) -> None:
    page = api.get("/console", token="").body.decode()
    assert '<script type="module" src="console/console.js">' in page and 'href="console/console.css"' in page
    assert "<script>" not in page and "style=" not in page and "//" not in page.split("<body>")[1]


def test_an_unchanged_file_answers_304_without_a_body(api: Api) -> None:
    first = api.get("/console/console.js", token="")
    again = api.get("/console/console.js", token="", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.body == b""
    changed = api.get("/console/console.js", token="", headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200


@pytest.mark.parametrize("name", ["app.py", "assets.py", "..", "index.htm", "CONSOLE.JS", "%2e%2e%2fapp.py"])
def test_only_allow_listed_files_are_served(api: Api, name: str) -> None:
    response = api.get(f"/console/{name}", token="")
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "not_found"


def test_the_console_routes_need_no_token_but_the_api_still_does(api: Api, app: Any) -> None:
    assert app.routes["/console"]["GET"].authorizer is None
    assert app.routes["/console/{asset}"]["GET"].authorizer is None
    assert api.get("/api/v1/orders", token="").status_code == 401


def test_a_trailing_slash_is_sent_to_the_page_address_keeping_any_stage_prefix(api: Api) -> None:
    response = api.get("/console/", token="")
    assert response.status_code == 301
    assert response.headers["Location"] == "../console"


@pytest.mark.parametrize("module", ["console.js", "api.js", "dom.js"])
def test_no_served_module_writes_html(api: Api, module: str) -> None:
    """Data reaches the page only as text: no module has a way to parse a string as HTML or code."""
    script = api.get(f"/console/{module}", token="").body.decode()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


def test_the_console_imports_only_sibling_modules_that_are_served(api: Api) -> None:
    """Module specifiers resolve against the importing module's URL: relative ones keep a stage prefix."""
    script = api.get("/console/console.js", token="").body.decode()
    imported = re.findall(r"""\bfrom\s*'([^']+)'""", script)
    assert sorted(imported) == ["./api.js", "./dom.js"]
    for specifier in imported:
        assert api.get("/console/" + specifier.removeprefix("./"), token="").status_code == 200
