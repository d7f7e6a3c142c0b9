"""One HTTP POST to one integrator, authenticated its way, classified into delivered / retry / failed.

A single `requests.Session` per container keeps connections to each integrator alive between invocations;
every call has explicit connect and read timeouts.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from chalicelib.integrators.registry import Integrator
from chalicelib.integrators.signing import signature_headers
from chalicelib.settings import get_settings

USER_AGENT = "order-relay/1.0"
BODY_LOG_LIMIT = 4096
RESPONSE_KEEP_LIMIT = 16 * 1024
TOKEN_MARGIN_SECONDS = 60


@cache
def session() -> requests.Session:
    http = requests.Session()
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=64, max_retries=0)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


@dataclass
class Result:
    outcome: str  # delivered | retry | failed
    status_code: int | None
    latency_ms: float
    error_class: str | None = None
    error: str | None = None
    body_text: str | None = None
    response_json: Any = None
    retry_after: float | None = None


class TokenFetchError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class _TokenCache:
    """OAuth2 client-credentials tokens per (token_url, client_id), reused until shortly before expiry."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, auth: dict[str, Any], timeout: float) -> str:
        key = (auth["token_url"], auth["client_id"])
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            token, ttl = _fetch_token(auth, timeout)
            self._tokens[key] = (token, time.monotonic() + max(0.0, ttl - TOKEN_MARGIN_SECONDS))
            return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def invalidate(self, auth: dict[str, Any]) -> None:
        with self._lock:
            self._tokens.pop((auth["token_url"], auth["client_id"]), None)


tokens = _TokenCache()


def _fetch_token(auth: dict[str, Any], timeout: float) -> tuple[str, float]:
    form = {"grant_type": "client_credentials"}
    if auth.get("scope"):
        form["scope"] = auth["scope"]
    try:
        response = session().post(
            auth["token_url"],
            data=form,
            auth=(auth["client_id"], auth["client_secret"]),
            timeout=(get_settings().dispatch_connect_timeout, timeout),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise TokenFetchError(f"token endpoint unreachable: {type(exc).__name__}", retryable=True) from exc
    if response.status_code != 200:
        retryable = response.status_code in (408, 429) or response.status_code >= 500
        raise TokenFetchError(f"token endpoint answered {response.status_code}", retryable=retryable)
    try:
        data = response.json()
        return str(data["access_token"]), float(data.get("expires_in", 300))
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenFetchError("token endpoint returned no access_token", retryable=False) from exc


def _auth_headers(integrator: Integrator, webhook_id: str, body: bytes) -> dict[str, str]:
    auth = integrator.auth
    kind = integrator.auth_type
    if kind == "api_key":
        return {auth.get("header", "X-API-Key"): auth["key"]}
    if kind == "bearer":
        return {"Authorization": f"Bearer {auth['token']}"}
    if kind == "oauth2_client_credentials":
        return {"Authorization": f"Bearer {tokens.get(auth, integrator.timeout_seconds)}"}
    if kind == "hmac":
        secrets = [auth["secret"], *auth.get("previous_secrets", [])]
        headers = signature_headers(secrets[0], webhook_id, body)
        extra = [signature_headers(s, webhook_id, body, now=int(headers["webhook-timestamp"])) for s in secrets[1:]]
        headers["webhook-signature"] = " ".join(
            [headers["webhook-signature"], *(h["webhook-signature"] for h in extra)]
        )
        return headers
    return {}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _classify(response: requests.Response, latency_ms: float) -> Result:
    text = response.text[:BODY_LOG_LIMIT]
    code = response.status_code
    if 200 <= code < 300:
        try:
            parsed = response.json() if response.content and len(response.content) <= RESPONSE_KEEP_LIMIT else None
            error = None
        except ValueError:
            parsed, error = None, "response body is not JSON (kept as text)"
        return Result("delivered", code, latency_ms, error=error, body_text=text, response_json=parsed)
    if code in (408, 429) or code >= 500:
        return Result(
            "retry",
            code,
            latency_ms,
            "HTTPError",
            f"HTTP {code}",
            text,
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )
    return Result("failed", code, latency_ms, "HTTPError", f"HTTP {code}", text)


def post(integrator: Integrator, *, event: str, webhook_id: str, payload: dict[str, Any]) -> Result:
    """Send once (plus one immediate re-send when an OAuth2 token was refused, with a fresh token)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    timeouts = (get_settings().dispatch_connect_timeout, integrator.timeout_seconds)
    started = time.perf_counter()
    for refreshed in (False, True):
        try:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "webhook-id": webhook_id,
                "webhook-timestamp": str(int(time.time())),
                "X-Order-Event": event,
                **_auth_headers(integrator, webhook_id, body),
            }
            # No redirects: a 3xx is a failed delivery, never a POST of the order to an address nobody checked.
            response = session().post(
                integrator.url, data=body, headers=headers, timeout=timeouts, allow_redirects=False
            )
        except TokenFetchError as exc:
            latency = (time.perf_counter() - started) * 1000
            return Result("retry" if exc.retryable else "failed", None, latency, "TokenError", str(exc))
        except requests.Timeout as exc:
            return Result("retry", None, (time.perf_counter() - started) * 1000, type(exc).__name__, "timed out")
        except requests.RequestException as exc:
            return Result("retry", None, (time.perf_counter() - started) * 1000, type(exc).__name__, str(exc)[:500])
        latency = (time.perf_counter() - started) * 1000
        if response.status_code == 401 and integrator.auth_type == "oauth2_client_credentials" and not refreshed:
            tokens.invalidate(integrator.auth)
            continue
        return _classify(response, latency)
    raise AssertionError("unreachable")  # pragma: no cover
