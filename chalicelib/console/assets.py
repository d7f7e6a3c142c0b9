"""Serve the console's files from the package, with the headers a browser needs to cache them safely and to
refuse anything the console did not ship itself.

Files are read on first request, not at import: every Lambda function imports app.py, and only the API's
function ever serves the console.

The scripts are ES modules (no build step): console.js holds the console's screens and imports api.js (the one API
client) and dom.js (text-only rendering helpers). Those two are written for every page the service serves, and
they live here, at <stage>/console/api.js and dom.js, rather than under a separate prefix: a later page (the
tracking page, the integrator portal) adds its own module to this allow-list and imports them relatively, which
keeps an API Gateway stage prefix without any configuration. A module must be sent with a JavaScript type (with
`nosniff` a browser refuses anything else), and every file on the list gets the same security headers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"

# The allow-list: only these names are ever read from disk, so no request path can reach another file.
JAVASCRIPT = "text/javascript; charset=utf-8"
CONTENT_TYPES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": JAVASCRIPT,
    "api.js": JAVASCRIPT,
    "dom.js": JAVASCRIPT,
    "portal.html": "text/html; charset=utf-8",
    "portal.js": JAVASCRIPT,
    "portal.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
    # The customer's tracking page (served at /track by chalicelib/api/tracking.py).
    "track.html": "text/html; charset=utf-8",
    "track.css": "text/css; charset=utf-8",
    "track.js": JAVASCRIPT,
}

# Only the console's own files: no inline script or style, no other host, not framable, no plugins.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    etag: str


@dataclass(frozen=True)
class Served:
    status: int
    headers: dict[str, str]
    body: str


@cache
def load(name: str) -> Asset | None:
    """One shipped file, or None for a name that is not on the allow-list."""
    content_type = CONTENT_TYPES.get(name)
    if content_type is None:
        return None
    body = (STATIC / name).read_text(encoding="utf-8")
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
    return Asset(body=body, content_type=content_type, etag=etag)


def serve(name: str, if_none_match: str | None) -> Served | None:
    """The response for one file: `no-cache` plus an ETag, so a browser revalidates each time (a 304 costs
    nothing) and never runs yesterday's script against today's page after a deploy."""
    asset = load(name)
    if asset is None:
        return None
    headers = {"Cache-Control": "no-cache", "ETag": asset.etag, **SECURITY_HEADERS}
    if if_none_match and asset.etag in [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]:
        return Served(304, headers, "")
    return Served(200, {"Content-Type": asset.content_type, **headers}, asset.body)
