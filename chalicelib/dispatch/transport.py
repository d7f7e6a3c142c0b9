"""One HTTP POST to one integrator, authenticated its way, its answer classified by the retry policy.

Calls go through `dispatch.egress` (checked addresses, a total deadline) and never follow a redirect; at most
MAX_RESPONSE_BYTES of an answer are read, however much the integrator sends. A failure is an error class and a
message of the service's own (`dispatch.failures`), never an exception's text; a 2xx answer's JSON is kept only
when it can be stored and shown again as it came (finite numbers, nested at most MAX_RESPONSE_DEPTH levels).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from chalicelib.dispatch import egress, failures
from chalicelib.dispatch.authentication import TokenFetchError, auth_headers, tokens
from chalicelib.dispatch.failures import ErrorClass
from chalicelib.dispatch.retry_policy import Outcome, classify, parse_retry_after
from chalicelib.domain.integrator import Integrator
from chalicelib.settings import get_settings

USER_AGENT = "order-relay/1.0"
BODY_LOG_LIMIT = 4096
RESPONSE_KEEP_LIMIT = 16 * 1024
MAX_RESPONSE_BYTES = 64 * 1024
MAX_RESPONSE_DEPTH = 32  # DynamoDB's own nesting limit for a document
REQUEST_BODY_KEPT = 16 * 1024  # of the body sent, kept in the attempt log for the integrator's portal
session = egress.session
# Our own request cannot be built (a header value or URL the settings hold is not valid HTTP): retrying cannot help.
UNBUILDABLE = (
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)


@dataclass
class Result:
    """One attempt's outcome. `error` is the service's own words, safe for a seller, a customer, a log line or
    an SNS event; `detail` (a payload template's reason) and `body_text` (the integrator's answer) are for the
    admin-only attempt log."""

    outcome: Outcome
    status_code: int | None
    latency_ms: float
    error_class: ErrorClass | None = None
    error: str | None = None
    body_text: str | None = None
    response_json: Any = None
    retry_after: float | None = None
    detail: str | None = None
    request_headers: dict[str, str] | None = None  # as sent, credentials masked
    request_body: str | None = None  # as sent, the first REQUEST_BODY_KEPT bytes


class SendWindowMissed(Exception):
    """The POST would start after its rate-limit slot's `send_by` time; nothing was sent."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _depth(value: Any) -> int:
    """How deeply `value` nests (iteratively: the value came from a partner)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        current, level = todo.pop()
        deepest = max(deepest, level)
        if isinstance(current, dict):
            todo.extend((item, level + 1) for item in current.values())
        elif isinstance(current, list):
            todo.extend((item, level + 1) for item in current)
    return deepest


def storable_json(content: bytes) -> tuple[Any, str | None]:
    """A 2xx answer's JSON when it can be kept and shown again as is, else None and why (the text is kept)."""
    try:
        parsed = json.loads(content, parse_float=_finite, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return None, "response body is not JSON (kept as text)"
    if _depth(parsed) > MAX_RESPONSE_DEPTH:
        return None, f"response body nested over {MAX_RESPONSE_DEPTH} levels (kept as text)"
    return parsed, None


def _result(response: requests.Response, latency_ms: float, content: bytes, truncated: bool) -> Result:
    text = content[:BODY_LOG_LIMIT].decode("utf-8", errors="replace")
    code = response.status_code
    outcome = classify(code)
    if outcome is Outcome.DELIVERED:
        parsed, error = None, "response body over the read limit (truncated)" if truncated else None
        if content and not truncated and len(content) <= RESPONSE_KEEP_LIMIT:
            parsed, error = storable_json(content)
        return Result(outcome, code, latency_ms, error=error, body_text=text, response_json=parsed)
    if 300 <= code < 400:
        return Result(outcome, code, latency_ms, ErrorClass.REDIRECT, f"HTTP {code}: redirects are not followed", text)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if outcome is Outcome.RETRY else None
    return Result(outcome, code, latency_ms, ErrorClass.HTTP, f"HTTP {code}", text, retry_after=retry_after)


def delivery_headers(event: str, webhook_id: str, timestamp: int) -> dict[str, str]:
    """Every delivery's own headers, before the integrator's auth (shared with the preview)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "X-Order-Event": event,
    }


def post(
    integrator: Integrator,
    *,
    event: str,
    webhook_id: str,
    body: bytes,
    send_by: float | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Result:
    """Send `body` as is, the bytes the signature covers (plus one immediate re-send when an OAuth2 token was
    refused, with a fresh token), all of it within the connect timeout plus the integrator's timeout.

    With `send_by` (a rate-limit slot's), a POST that would start later raises SendWindowMissed instead:
    nothing reached the integrator, and the caller reserves another slot."""
    connect = get_settings().dispatch_connect_timeout
    sent: dict[str, str] = {}
    with egress.deadline(connect + integrator.timeout_seconds) as limit:
        result = _post(
            integrator,
            event=event,
            webhook_id=webhook_id,
            body=body,
            connect=connect,
            send_by=send_by,
            sent=sent,
            extra_headers=extra_headers or {},
        )
    if limit.expired and result.outcome is not Outcome.DELIVERED and result.status_code is None:
        total = connect + integrator.timeout_seconds
        result = Result(
            Outcome.RETRY, None, result.latency_ms, ErrorClass.TIMEOUT, f"timed out after {total:g} s in total"
        )
    if sent:
        result.request_headers = shown_headers(sent, integrator)
        result.request_body = body[:REQUEST_BODY_KEPT].decode("utf-8", errors="replace")
    return result


def shown_headers(headers: dict[str, str], integrator: Integrator) -> dict[str, str]:
    """Headers as the attempt log keeps them: credentials masked. An HMAC signature is kept (it reveals no secret
    and lets the integrator check its verification)."""
    secret = {"authorization"}
    if integrator.auth_type == "api_key":
        secret.add(str(integrator.auth.get("header", "X-API-Key")).lower())
    return {
        name: ("Bearer ****" if value.startswith("Bearer ") else "****") if name.lower() in secret else value
        for name, value in headers.items()
    }


def _post(
    integrator: Integrator,
    *,
    event: str,
    webhook_id: str,
    body: bytes,
    connect: float,
    send_by: float | None,
    sent: dict[str, str],
    extra_headers: dict[str, str],
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
                **extra_headers,
                **auth_headers(http, integrator, webhook_id, body),
            }
            sent.clear()
            sent.update(headers)
            # No redirects: a 3xx is a failed delivery, never a POST of the order to an address nobody checked.
            if send_by is not None and time.time() > send_by:  # checked after the token fetch, right before the POST
                raise SendWindowMissed(f"the POST would start {time.time() - send_by:.3f} s after its slot")
            response = http.post(
                integrator.url, data=body, headers=headers, timeout=timeouts, allow_redirects=False, stream=True
            )
        except egress.BlockedAddress:
            return Result(Outcome.FAILED, None, elapsed(), ErrorClass.BLOCKED, failures.BLOCKED)
        except TokenFetchError as exc:
            outcome = Outcome.RETRY if exc.retryable else Outcome.FAILED
            return Result(outcome, None, elapsed(), ErrorClass.TOKEN, exc.message)
        except requests.ConnectTimeout:
            return Result(Outcome.RETRY, None, elapsed(), ErrorClass.TIMEOUT, f"no connection within {connect:g} s")
        except requests.Timeout:
            wait = integrator.timeout_seconds
            return Result(Outcome.RETRY, None, elapsed(), ErrorClass.TIMEOUT, f"no answer within {wait:g} s")
        except UNBUILDABLE:
            return Result(Outcome.FAILED, None, elapsed(), ErrorClass.REQUEST, failures.REQUEST_UNBUILDABLE)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            message = failures.connection_message(exc)
            return Result(Outcome.RETRY, None, elapsed(), ErrorClass.CONNECTION, message)
        if response.status_code == 401 and integrator.auth_type == "oauth2_client_credentials" and not refreshed:
            response.close()
            tokens.invalidate(integrator.auth)
            continue
        try:
            content, truncated = egress.read_capped(response, MAX_RESPONSE_BYTES)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            # Cut short (a dropped connection, the deadline: see `post`) or malformed (bad chunking) while reading.
            return Result(Outcome.RETRY, None, elapsed(), ErrorClass.RESPONSE_UNREADABLE, failures.UNREADABLE)
        return _result(response, elapsed(), content, truncated)
    raise AssertionError("unreachable")  # pragma: no cover
