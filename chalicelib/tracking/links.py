"""Tracking links: a read-only capability for one order, checked with an HMAC and no database read.

A token is `t1.<order id>.<issued ms>.<expires s>.<key id>.<signature>`: HMAC-SHA256 over everything before the
signature, keyed by a key kept in Secrets Manager (`TRACKING_LINK_SECRET`). A forged, altered or expired token is
refused before anything is read. What the token cannot know is checked where the order is read anyway: that the
order ended more than `TRACKING_LINK_TTL_SECONDS` ago, and that a seller revoked its links after it was issued.

Rotation keeps live links working: the secret holds one or more keys separated by whitespace, the first signs,
every one verifies (found by its key id, a digest of the key). To rotate, put `NEW OLD` as the secret's value,
and remove OLD after `TRACKING_LINK_MAX_AGE_SECONDS` (the longest a link lives), when no link signed by it is left.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from chalicelib.settings import ConfigurationError, get_settings

PREFIX = "t1"
CACHE_SECONDS = 300
MIN_KEY_LENGTH = 32
_TOKEN = re.compile(r"t1\.(ord_[0-9A-Z]{26})\.(\d{13})\.(\d{10})\.([0-9a-f]{8})\.([A-Za-z0-9_-]{22})")


@dataclass(frozen=True)
class Link:
    """A verified token: whose order, when it was issued (ms, for revocation) and until when it can live."""

    order_id: str
    issued_ms: int
    expires_at: int


class InvalidLink(Exception):
    """Any reason a link is refused. The reason is for the log; the caller always answers the same neutral way."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _keys() -> list[str]:
    from chalicelib.aws import secret_text

    name = get_settings().tracking_link_secret
    if not name:
        raise ConfigurationError("order-relay is misconfigured: TRACKING_LINK_SECRET is not set")
    keys = secret_text(name, max_age=CACHE_SECONDS).split()
    if not keys or any(len(key) < MIN_KEY_LENGTH for key in keys):
        raise ConfigurationError(f"the tracking link secret must hold keys of at least {MIN_KEY_LENGTH} characters")
    return keys


def _signature(key: str, payload: str) -> str:
    digest = hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(key: str, order_id: str, issued_ms: int, expires: int) -> str:
    """The token for these fields under `key` (pure: the tests forge and expire links with it)."""
    payload = f"{PREFIX}.{order_id}.{issued_ms:013d}.{expires:010d}.{key_id(key)}"
    return f"{payload}.{_signature(key, payload)}"


def issue(order_id: str, *, now: float | None = None) -> tuple[str, int]:
    """A new token for `order_id` and its hard expiry (unix seconds)."""
    moment = time.time() if now is None else now
    expires = int(moment) + get_settings().tracking_link_max_age_seconds
    return sign(_keys()[0], order_id, int(moment * 1000), expires), expires


def verify(token: str | None, *, now: float | None = None) -> Link:
    """The link a token grants, or InvalidLink. Only the signature and the expiry: no database read."""
    match = _TOKEN.fullmatch(token or "")
    if match is None:
        raise InvalidLink("malformed")
    order_id, issued, expires, kid, signature = match.groups()
    key = next((k for k in _keys() if key_id(k) == kid), None)
    if key is None:
        raise InvalidLink("unknown key")
    if not hmac.compare_digest(_signature(key, token.rsplit(".", 1)[0]), signature):  # type: ignore[union-attr]
        raise InvalidLink("bad signature")
    if int(expires) <= (time.time() if now is None else now):
        raise InvalidLink("expired")
    return Link(order_id=order_id, issued_ms=int(issued), expires_at=int(expires))


def tracking_url(token: str) -> str:
    """The page's address with the token in the fragment: browsers never send a fragment to a server, so the
    token stays out of access logs and Referer headers."""
    base = (get_settings().public_base_url or "").rstrip("/")
    return f"{base}/track#{token}"
