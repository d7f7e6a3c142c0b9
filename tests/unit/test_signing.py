"""Standard Webhooks signing, checked against the reference implementation (the `standardwebhooks` package)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
import standardwebhooks

from chalicelib.integrators.signing import SignatureError, generate_secret, sign, signature_headers, verify

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = b'{"order_id":"ord_1","status":"accepted"}'
NOW = 1_800_000_000


def test_our_signatures_verify_with_the_reference() -> None:
    headers = signature_headers(SECRET, "msg_1", BODY, now=NOW)
    reference = standardwebhooks.Webhook(SECRET)
    reference._now = lambda: datetime.fromtimestamp(NOW, tz=UTC)  # type: ignore[attr-defined]
    assert (
        standardwebhooks.Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(NOW, tz=UTC), BODY.decode())
        == headers["webhook-signature"]
    )


def test_reference_signatures_verify_with_ours() -> None:
    signature = standardwebhooks.Webhook(SECRET).sign("msg_2", datetime.fromtimestamp(NOW, tz=UTC), BODY.decode())
    headers = {"Webhook-Id": "msg_2", "Webhook-Timestamp": str(NOW), "Webhook-Signature": signature}
    assert verify([SECRET], headers, BODY, now=NOW) == "msg_2"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": BODY + b" "}, "no_valid_signature"),
        ({"webhook-id": "msg_other"}, "no_valid_signature"),
        ({"webhook-timestamp": str(NOW + 1)}, "no_valid_signature"),
        ({"webhook-signature": "v1,not-base64!!"}, "no_valid_signature"),
        ({"webhook-signature": "v2,abc"}, "no_valid_signature"),
        ({"webhook-timestamp": "soon"}, "bad_timestamp"),
        ({"webhook-id": ""}, "missing_headers"),
    ],
)
def test_tampering_is_refused(change: dict[str, str], reason: str) -> None:
    headers = signature_headers(SECRET, "msg_1", BODY, now=NOW)
    body = change.pop("body", BODY)  # type: ignore[arg-type]
    headers.update(change)
    with pytest.raises(SignatureError) as refused:
        verify([SECRET], headers, body, now=NOW)  # type: ignore[arg-type]
    assert refused.value.reason == reason


@pytest.mark.parametrize(("offset", "ok"), [(-301, False), (-300, True), (300, True), (301, False)])
def test_timestamp_tolerance_is_five_minutes_both_ways(offset: int, ok: bool) -> None:
    headers = signature_headers(SECRET, "msg_1", BODY, now=NOW)
    if ok:
        assert verify([SECRET], headers, BODY, now=NOW + offset) == "msg_1"
    else:
        with pytest.raises(SignatureError, match="timestamp_out_of_range"):
            verify([SECRET], headers, BODY, now=NOW + offset)


def test_rotation_on_either_side_passes() -> None:
    old = sign(OTHER, "msg_1", NOW, BODY)
    new = sign(SECRET, "msg_1", NOW, BODY)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": f"{old} {new}"}
    assert verify([SECRET], headers, BODY, now=NOW) == "msg_1"
    only_old = {**headers, "webhook-signature": old}
    assert verify([SECRET, OTHER], only_old, BODY, now=NOW) == "msg_1"
    with pytest.raises(SignatureError):
        verify([SECRET], only_old, BODY, now=NOW)


def test_secrets_with_or_without_prefix_and_malformed_ones() -> None:
    raw = SECRET.removeprefix("whsec_")
    headers = signature_headers(SECRET, "msg_1", BODY, now=NOW)
    assert verify([raw], headers, BODY, now=NOW) == "msg_1"
    with pytest.raises(SignatureError):
        verify(["whsec_%%%not base64"], headers, BODY, now=NOW)
    assert generate_secret().startswith("whsec_") and len(base64.b64decode(generate_secret()[6:])) == 32
