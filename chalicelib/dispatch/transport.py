"""One HTTP POST to one integrator, authenticated its way, its answer classified by the retry policy.

Calls go through `dispatch.egress` (checked addresses, a total deadline) and never follow a redirect; at most
MAX_RESPONSE_BYTES of an answer are read, however much the integrator sends.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from chalicelib.dispatch import egress
from chalicelib.dispatch.authentication import TokenFetchError, auth_headers, tokens
from chalicelib.dispatch.retry_policy import Outcome, classify, parse_retry_after
from chalicelib.domain.integrator import Integrator
from chalicelib.settings import get_settings

USER_AGENT = "order-relay/1.0"
BODY_LOG_LIMIT = 4096
RESPONSE_KEEP_LIMIT = 16 * 1024
MAX_RESPONSE_BYTES = 64 * 1024
session = egress.session


@dataclass
class Result:
    outcome: Outcome
    status_code: int | None
    latency_ms: float
    error_class: str | None = None
    error: str | None = None
    body_text: str | None = None
    response_json: Any = None
    retry_after: float | None = None


class SendWindowMissed(Exception):
    """The POST would start after its rate-limit slot's `send_by` time; nothing was sent."""


def _read_capped(response: requests.Response) -> tuple[bytes, bool]:
    """At most MAX_RESPONSE_BYTES of the body (undecoded: no decompression bomb), and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= MAX_RESPONSE_BYTES:
            chunk = response.raw.read(8192, decode_content=False)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        response.close()
    return b"".join(chunks)[:MAX_RESPONSE_BYTES], size > MAX_RESPONSE_BYTES


def _result(response: requests.Response, latency_ms: float, content: bytes, truncated: bool) -> Result:
    text = content[:BODY_LOG_LIMIT].decode("utf-8", errors="replace")
    code = response.status_code
    outcome = classify(code)
    if outcome is Outcome.DELIVERED:
        parsed, error = None, "response body over the read limit (truncated)" if truncated else None
        if content and not truncated and len(content) <= RESPONSE_KEEP_LIMIT:
            try:
                parsed = json.loads(content)
            except ValueError:
                error = "response body is not JSON (kept as text)"
        return Result(outcome, code, latency_ms, error=error, body_text=text, response_json=parsed)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if outcome is Outcome.RETRY else None
    return Result(outcome, code, latency_ms, "HTTPError", f"HTTP {code}", text, retry_after=retry_after)


def delivery_headers(event: str, webhook_id: str, timestamp: int) -> dict[str, str]:
    """Every delivery's own headers, before the integrator's auth (shared with the preview)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "X-Order-Event": event,
    }


def post(integrator: Integrator, *, event: str, webhook_id: str, body: bytes, send_by: float | None = None) -> Result:
    """Send `body` as is, the bytes the signature covers (plus one immediate re-send when an OAuth2 token was
    refused, with a fresh token), all of it within the connect timeout plus the integrator's timeout.

    With `send_by` (a rate-limit slot's), a POST that would start later raises SendWindowMissed instead:
    nothing reached the integrator, and the caller reserves another slot."""
    connect = get_settings().dispatch_connect_timeout
    with egress.deadline(connect + integrator.timeout_seconds) as limit:
        result = _post(integrator, event=event, webhook_id=webhook_id, body=body, connect=connect, send_by=send_by)
    if limit.expired and result.outcome is not Outcome.DELIVERED and result.status_code is None:
        total = connect + integrator.timeout_seconds
        return Result(Outcome.RETRY, None, result.latency_ms, "Timeout", f"timed out after {total:g} s in total")
    return result


def _post(
    integrator: Integrator,
    *,
    event: str,
    webhook_id: str,
    body: bytes,
    connect: float,
    send_by: float | None,
) -> Result:
    timeouts = (connect, integrator.timeout_seconds)
    http = session()
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    for refreshed in (False, True):
        try:
            headers = {
                **delivery_headers(event, webhook_id, int(time.time())),
                "Accept-Encoding": "identity",
                **auth_headers(http, integrator, webhook_id, body),
            }
            # No redirects: a 3xx is a failed delivery, never a POST of the order to an address nobody checked.
            if send_by is not None and time.time() > send_by:  # checked after the token fetch, right before the POST
                raise SendWindowMissed(f"the POST would start {time.time() - send_by:.3f} s after its slot")
            response = http.post(
                integrator.url, data=body, headers=headers, timeout=timeouts, allow_redirects=False, stream=True
            )
            if response.status_code == 401 and integrator.auth_type == "oauth2_client_credentials" and not refreshed:
                response.close()
                tokens.invalidate(integrator.auth)
                continue
            content, truncated = _read_capped(response)
        except egress.BlockedAddress as exc:
            return Result(Outcome.FAILED, None, elapsed(), "BlockedAddress", str(exc))
        except TokenFetchError as exc:
            return Result(Outcome.RETRY if exc.retryable else Outcome.FAILED, None, elapsed(), "TokenError", str(exc))
        except requests.Timeout as exc:
            return Result(Outcome.RETRY, None, elapsed(), type(exc).__name__, "timed out")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # urllib3 and socket errors come straight from reading a streamed body (cut short, or the deadline).
            return Result(Outcome.RETRY, None, elapsed(), type(exc).__name__, str(exc)[:500])
        return _result(response, elapsed(), content, truncated)
    raise AssertionError("unreachable")  # pragma: no cover
