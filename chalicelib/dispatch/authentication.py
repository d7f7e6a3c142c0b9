"""Outbound authentication: the headers each auth type puts on a delivery, and the OAuth2 token cache.
A new auth type is its schema in `integrators.auth` plus a branch in `auth_headers`."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from chalicelib.domain.integrator import Integrator
from chalicelib.integrators.secrets import mask
from chalicelib.integrators.signing import signature_headers
from chalicelib.settings import get_settings

TOKEN_MARGIN_SECONDS = 60


class TokenFetchError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class TokenCache:
    """OAuth2 client-credentials tokens per (token_url, client_id), reused until shortly before expiry."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, http: requests.Session, auth: dict[str, Any], timeout: float) -> str:
        key = (auth["token_url"], auth["client_id"])
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            token, ttl = _fetch_token(http, auth, timeout)
            self._tokens[key] = (token, time.monotonic() + max(0.0, ttl - TOKEN_MARGIN_SECONDS))
            return token

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
