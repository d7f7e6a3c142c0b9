"""Outbound authentication: the headers each auth type puts on a delivery, and the OAuth2 token cache.
A new auth type is its schema in `integrators.auth` plus a branch in `auth_headers`."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from typing import Any

import requests
import urllib3

from chalicelib.dispatch.egress import read_capped
from chalicelib.domain.integrator import Integrator
from chalicelib.integrators.secrets import mask
from chalicelib.integrators.signing import signature_headers
from chalicelib.settings import get_settings

TOKEN_MARGIN_SECONDS = 60
TOKEN_RESPONSE_LIMIT = 16 * 1024  # a token answer is a few hundred bytes; more is read no further
DEFAULT_TTL_SECONDS = 300.0  # expires_in is only RECOMMENDED (RFC 6749 5.1)
MAX_TTL_SECONDS = 86400.0  # a token said to last longer is fetched again daily all the same
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # visible ASCII: anything else cannot go in a header


class TokenFetchError(Exception):
    """No usable token. The message is the service's own (it never quotes the endpoint's answer or URL)."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class TokenCache:
    """OAuth2 client-credentials tokens per (token_url, client_id), reused until shortly before expiry.

    One fetch in flight per credential: callers needing the same token wait for that fetch (single flight), and
    nobody else does. The shared lock only guards the dicts, never a network call, so one partner's slow token
    endpoint cannot hold up another's deliveries."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._flights: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, str]) -> str | None:
        with self._lock:
            cached = self._tokens.get(key)
        return cached[0] if cached and cached[1] > time.monotonic() else None

    def get(self, http: requests.Session, auth: dict[str, Any], timeout: float) -> str:
        key = (auth["token_url"], auth["client_id"])
        token = self._cached(key)
        if token is not None:
            return token
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        # Another delivery may be fetching this very token: wait for it, no longer than a fetch of our own.
        if not flight.acquire(timeout=get_settings().dispatch_connect_timeout + timeout):
            raise TokenFetchError("the token endpoint did not answer in time", retryable=True)
        try:
            token = self._cached(key)  # the fetch we waited for got it
            if token is not None:
                return token
            token, ttl = _fetch_token(http, auth, timeout)
            with self._lock:
                self._tokens[key] = (token, time.monotonic() + max(0.0, ttl - TOKEN_MARGIN_SECONDS))
            return token
        finally:
            flight.release()

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def invalidate(self, auth: dict[str, Any]) -> None:
        with self._lock:
            self._tokens.pop((auth["token_url"], auth["client_id"]), None)


tokens = TokenCache()


def _fetch_token(http: requests.Session, auth: dict[str, Any], timeout: float) -> tuple[str, float]:
    form = {"grant_type": "client_credentials"}
    if auth.get("scope"):
        form["scope"] = auth["scope"]
    try:
        response = http.post(
            auth["token_url"],
            data=form,
            auth=(auth["client_id"], auth["client_secret"]),
            headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            timeout=(get_settings().dispatch_connect_timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
        if response.status_code != 200:
            response.close()
            retryable = response.status_code in (408, 429) or response.status_code >= 500
            raise TokenFetchError(f"the token endpoint answered HTTP {response.status_code}", retryable=retryable)
        content, truncated = read_capped(response, TOKEN_RESPONSE_LIMIT)
    except requests.Timeout as exc:
        raise TokenFetchError("the token endpoint did not answer in time", retryable=True) from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise TokenFetchError("the token endpoint could not be reached", retryable=True) from exc
    if truncated:
        raise TokenFetchError("the token endpoint's answer is over 16 KB", retryable=False)
    return _read_token(content)


def _read_token(content: bytes) -> tuple[str, float]:
    """The access token and its lifetime in seconds from a token answer, whatever the endpoint sent."""
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        raise TokenFetchError("the token endpoint's answer is not JSON", retryable=False) from None
    if not isinstance(data, dict):
        raise TokenFetchError("the token endpoint's answer is not a JSON object", retryable=False)
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenFetchError("the token endpoint's answer has no access_token", retryable=False)
    if not _TOKEN_CHARS.fullmatch(token):
        raise TokenFetchError("the token endpoint's access_token is unusable", retryable=False)
    return token, _lifetime(data.get("expires_in"))


def _lifetime(expires_in: Any) -> float:
    """`expires_in` as seconds, between 0 and a day: absent means the default; a number (or numeric text, as some
    providers send) is clamped; anything else (NaN, an object, a boolean) is refused."""
    if expires_in is None:
        return DEFAULT_TTL_SECONDS
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | str):
        raise TokenFetchError("the token endpoint's expires_in is not a number", retryable=False)
    try:
        seconds = float(expires_in)
    except OverflowError:  # an integer too large for a float: a very long lifetime
        seconds = math.inf
    except ValueError:
        raise TokenFetchError("the token endpoint's expires_in is not a number", retryable=False) from None
    if math.isnan(seconds):
        raise TokenFetchError("the token endpoint's expires_in is not a number", retryable=False)
    return min(max(seconds, 0.0), MAX_TTL_SECONDS)


def auth_headers(http: requests.Session, integrator: Integrator, webhook_id: str, body: bytes) -> dict[str, str]:
    auth = integrator.auth
    kind = integrator.auth_type
    if kind == "api_key":
        return {auth.get("header", "X-API-Key"): auth["key"]}
    if kind == "bearer":
        return {"Authorization": f"Bearer {auth['token']}"}
    if kind == "oauth2_client_credentials":
        return {"Authorization": f"Bearer {tokens.get(http, auth, integrator.timeout_seconds)}"}
    if kind == "hmac":
        return _hmac_headers(auth, webhook_id, body)
    return {}


def _hmac_headers(auth: dict[str, Any], webhook_id: str, body: bytes) -> dict[str, str]:
    secrets = [auth["secret"], *auth.get("previous_secrets", [])]
    headers = signature_headers(secrets[0], webhook_id, body)
    extra = [signature_headers(s, webhook_id, body, now=int(headers["webhook-timestamp"])) for s in secrets[1:]]
    headers["webhook-signature"] = " ".join([headers["webhook-signature"], *(h["webhook-signature"] for h in extra)])
    return headers


def masked_auth_headers(integrator: Integrator, webhook_id: str, body: bytes) -> dict[str, str]:
    """The auth headers `auth_headers` would put on this body, for a preview that sends nothing: no OAuth2 token
    is fetched (a placeholder stands in), keys and tokens are masked, and an HMAC signature is computed for real
    (it does not reveal the secret, and lets the integrator's developers check their verification)."""
    auth = integrator.auth
    kind = integrator.auth_type
    if kind == "api_key":
        return {auth.get("header", "X-API-Key"): mask(auth["key"])}
    if kind == "bearer":
        return {"Authorization": f"Bearer {mask(auth['token'])}"}
    if kind == "oauth2_client_credentials":
        return {"Authorization": "Bearer ****"}
    if kind == "hmac":
        return _hmac_headers(auth, webhook_id, body)
    return {}
