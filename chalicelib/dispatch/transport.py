"""One HTTP POST to one integrator, authenticated its way, its answer classified by the retry policy.

A single `requests.Session` per container keeps connections to each integrator alive between invocations;
every call has explicit connect and read timeouts and never follows a redirect.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from chalicelib.dispatch.authentication import TokenFetchError, auth_headers, tokens
from chalicelib.dispatch.retry_policy import Outcome, classify, parse_retry_after
from chalicelib.domain.integrator import Integrator
from chalicelib.settings import get_settings

USER_AGENT = "order-relay/1.0"
BODY_LOG_LIMIT = 4096
RESPONSE_KEEP_LIMIT = 16 * 1024


@cache
def session() -> requests.Session:
    http = requests.Session()
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=64, max_retries=0)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


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


def _result(response: requests.Response, latency_ms: float) -> Result:
    text = response.text[:BODY_LOG_LIMIT]
    code = response.status_code
    outcome = classify(code)
    if outcome is Outcome.DELIVERED:
        try:
            parsed = response.json() if response.content and len(response.content) <= RESPONSE_KEEP_LIMIT else None
            error = None
        except ValueError:
            parsed, error = None, "response body is not JSON (kept as text)"
        return Result(outcome, code, latency_ms, error=error, body_text=text, response_json=parsed)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if outcome is Outcome.RETRY else None
    return Result(outcome, code, latency_ms, "HTTPError", f"HTTP {code}", text, retry_after=retry_after)


def post(integrator: Integrator, *, event: str, webhook_id: str, payload: dict[str, Any]) -> Result:
    """Send once (plus one immediate re-send when an OAuth2 token was refused, with a fresh token)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    timeouts = (get_settings().dispatch_connect_timeout, integrator.timeout_seconds)
    http = session()
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    for refreshed in (False, True):
        try:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "webhook-id": webhook_id,
                "webhook-timestamp": str(int(time.time())),
                "X-Order-Event": event,
                **auth_headers(http, integrator, webhook_id, body),
            }
            # No redirects: a 3xx is a failed delivery, never a POST of the order to an address nobody checked.
            response = http.post(integrator.url, data=body, headers=headers, timeout=timeouts, allow_redirects=False)
        except TokenFetchError as exc:
            return Result(Outcome.RETRY if exc.retryable else Outcome.FAILED, None, elapsed(), "TokenError", str(exc))
        except requests.Timeout as exc:
            return Result(Outcome.RETRY, None, elapsed(), type(exc).__name__, "timed out")
        except requests.RequestException as exc:
            return Result(Outcome.RETRY, None, elapsed(), type(exc).__name__, str(exc)[:500])
        if response.status_code == 401 and integrator.auth_type == "oauth2_client_credentials" and not refreshed:
            tokens.invalidate(integrator.auth)
            continue
        return _result(response, elapsed())
    raise AssertionError("unreachable")  # pragma: no cover
