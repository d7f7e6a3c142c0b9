"""Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over "id.timestamp.body".

Stdlib only: it is imported by the API, the dispatcher and the callbacks on every cold start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300
# A webhook id is kept with its answer on the delivery row: a longer one is refused before anything is read.
MAX_WEBHOOK_ID_LENGTH = 256


class SignatureError(ValueError):
    """A webhook that must be refused; `reason` is short and safe to log (it never contains a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes | None:
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return None


def _digest(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = _key(secret)
    if key is None:
        raise ValueError("secret is not base64 (expected whsec_<base64>)")
    return "v1," + base64.b64encode(_digest(key, msg_id, timestamp, body)).decode()


def signature_headers(secret: str, msg_id: str, body: bytes, now: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if now is None else now
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


class SignedRequest(NamedTuple):
    """A webhook's signature headers, read and checked for form and freshness (no secret needed yet)."""

    webhook_id: str
    timestamp: int
    stamp: str  # the timestamp as sent: it is what was signed
    signatures: tuple[bytes, ...]


def read_headers(
    headers: Mapping[str, str], *, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> SignedRequest:
    """The checks that need no secret, so a request that fails them costs no secret read: the three headers are
    there and well-formed, and the timestamp is within `tolerance` of now."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, header = (lowered.get(n) for n in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not stamp or not header:
        raise SignatureError("missing_headers")
    if len(msg_id) > MAX_WEBHOOK_ID_LENGTH:
        raise SignatureError("webhook_id_too_long")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise SignatureError("bad_timestamp")
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise SignatureError("timestamp_out_of_range")
    offered = []
    for entry in header.split():
        version, _, value = entry.partition(",")
        if version == "v1" and value:
            try:
                offered.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
    if not offered:
        raise SignatureError("no_valid_signature")
    return SignedRequest(msg_id, timestamp, stamp, tuple(offered))


def signed_by(secrets_: Sequence[str], request: SignedRequest, body: bytes) -> bool:
    """Whether any offered `v1` signature matches any of the secrets (rotation on both sides)."""
    for secret in secrets_:
        key = _key(secret)
        if key is None:
            continue
        expected = _digest(key, request.webhook_id, request.stamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in request.signatures):
            return True
    return False


def verify(
    secrets_: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Return the webhook id when any `v1` signature matches any of the secrets (rotation on both sides)."""
    request = read_headers(headers, now=now, tolerance=tolerance)
    if not signed_by(secrets_, request, body):
        raise SignatureError("no_valid_signature")
    return request.webhook_id
