"""One place that reads the environment.

Read lazily (never at import): `chalice.test.Client` and the Lambda runtime only set the stage's
variables around an invocation, and tests change them between cases (`reset_settings`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from functools import cache
from typing import Any

# The dispatcher's SQS event source concurrency when a stage does not set DISPATCH_MAX_CONCURRENCY.
DEFAULT_DISPATCH_MAX_CONCURRENCY = 5


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed: fail loudly at first use, never guess a name."""


def required_setting(name: str) -> str:
    """For the few names read when the app is loaded (event sources): say which variable is missing."""
    raise ConfigurationError(
        f"order-relay is misconfigured: {name} is not set (stages set it in .chalice/config.json; "
        "`make package` and `make deploy` pass it)"
    )


@dataclass(frozen=True)
class Settings:
    """Every setting, typed and checked. A plain dataclass, not a pydantic model: every function reads settings on
    its first event, and the authorizer's cold start should not pay for importing pydantic (bench/coldstart.py)."""

    region: str
    orders_table: str
    tokens_table: str
    integrators_table: str
    deliveries_table: str
    idempotency_table: str
    secrets_prefix: str
    orders_queue_url: str | None = None
    orders_queue_name: str | None = None
    notifications_topic_arn: str | None = None
    notifications_topic_name: str | None = None
    admin_token_sha256: str | None = None
    admin_token_secret: str | None = None
    public_base_url: str | None = None
    allow_loopback_integrators: bool = False
    dispatch_max_attempts: int = 5
    dispatch_retry_delays: tuple[float, ...] = (5.0, 30.0, 120.0, 300.0)
    dispatch_connect_timeout: float = 3.05
    partial_batch_response: bool = False
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 30.0
    circuit_disable_after_seconds: float = 86400.0
    sweeper_grace_seconds: int = 60
    idempotency_ttl_seconds: int = 24 * 3600
    attempt_ttl_days: int = 30
    seller_orders_per_second: int = 100
    # After a rotation the previous callback secret stays valid this long (Standard Webhooks' usual 24 h).
    callback_secret_overlap_seconds: int = 86400
    # A callback whose signature fails re-reads its integrator's secrets uncached at most this often per name.
    callback_secret_refresh_seconds: float = 5.0
    portal_link_seconds: int = 900  # an integrator portal link must be opened within this
    portal_session_seconds: int = 8 * 3600  # a portal session lasts this long (at most 8 hours)
    tracking_table: str | None = None
    tracking_link_secret: str | None = None
    tracking_websocket_url: str | None = None
    tracking_management_url: str | None = None
    tracking_link_ttl_seconds: int = 24 * 3600
    tracking_link_max_age_seconds: int = 30 * 24 * 3600

    @classmethod
    def model_validate(cls, values: Mapping[str, object]) -> Settings:
        """Typed settings from raw values (text from the environment, or already typed); kept under pydantic's
        name so callers did not change. Raises ConfigurationError naming every bad field."""
        problems: list[tuple[str, str]] = []
        typed: dict[str, Any] = {}
        for spec in fields(cls):
            if spec.name not in values or values[spec.name] is None:
                if spec.default is MISSING:
                    problems.append((spec.name, "Field required"))
                continue
            try:
                typed[spec.name] = _convert(spec.name, values[spec.name])
            except ValueError as exc:
                problems.append((spec.name, str(exc)))
        if not problems:
            if not (typed.get("orders_queue_url") or typed.get("orders_queue_name")):
                # `chalice deploy` stages carry names (account-free); the packaged template passes the URL and ARN.
                problems.append(("", "set ORDERS_QUEUE_URL or ORDERS_QUEUE_NAME"))
            if not (typed.get("notifications_topic_arn") or typed.get("notifications_topic_name")):
                problems.append(("", "set NOTIFICATIONS_TOPIC_ARN or NOTIFICATIONS_TOPIC_NAME"))
        if problems:
            raise ConfigurationError(
                "order-relay is misconfigured: "
                + ", ".join(f"{_ENV.get(name, (name or 'settings',))[0]}: {message}" for name, message in problems)
            )
        return cls(**typed)

    def retry_delay(self, attempt: int) -> float:
        """Base delay before attempt `attempt + 1`; the last configured delay repeats."""
        delays = self.dispatch_retry_delays or (0.0,)
        return delays[min(attempt - 1, len(delays) - 1)]


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}
# Bounds of the numeric settings: (lowest, highest, lowest excluded).
_BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    "dispatch_max_attempts": (1, 50, False),
    "circuit_failure_threshold": (1, 1000, False),
    "circuit_cooldown_seconds": (0, 900, True),
    "circuit_disable_after_seconds": (0, None, True),
    "seller_orders_per_second": (0, 100000, False),
    "callback_secret_overlap_seconds": (0, 30 * 86400, False),
    "callback_secret_refresh_seconds": (0, 300, False),
    "portal_link_seconds": (1, 86400, False),
    "portal_session_seconds": (60, 8 * 3600, False),
    "tracking_link_ttl_seconds": (1, 90 * 24 * 3600, False),
    "tracking_link_max_age_seconds": (60, 365 * 24 * 3600, False),
}


def _convert(name: str, raw: object) -> object:
    """One raw value as its field's type; ValueError says what is wrong."""
    kind = _KINDS[name]
    if kind is str:
        if not isinstance(raw, str):
            raise ValueError("Input should be a valid string")
        return raw
    if kind is bool:
        return _boolean(raw)
    if kind is tuple:
        parts = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(parts, list | tuple):
            raise ValueError("Input should be a valid tuple")
        return tuple(_number(float, part) for part in parts if not isinstance(part, str) or part.strip())
    value = _number(int if kind is int else float, raw)
    low, high, exclusive = _BOUNDS.get(name, (None, None, False))
    if low is not None and (value <= low if exclusive else value < low):
        raise ValueError(f"Input should be greater than {'' if exclusive else 'or equal to '}{low}")
    if high is not None and value > high:
        raise ValueError(f"Input should be less than or equal to {high}")
    return value


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError("Input should be a valid boolean")


def _number(kind: type[int] | type[float], raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"Input should be a valid {'integer' if kind is int else 'number'}")
    try:
        value = kind(raw.strip() if isinstance(raw, str) else raw)
    except ValueError:
        raise ValueError(f"Input should be a valid {'integer' if kind is int else 'number'}") from None
    if kind is int and isinstance(raw, float) and raw != value:
        raise ValueError("Input should be a valid integer")
    return value


# Each field's kind, from its annotation (text under `from __future__ import annotations`); the rest are text.
_KIND_OF: dict[str, type] = {"bool": bool, "int": int, "float": float, "tuple[float, ...]": tuple}
_KINDS: dict[str, type] = {spec.name: _KIND_OF.get(str(spec.type), str) for spec in fields(Settings)}

_ENV = {
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "orders_table": ("ORDERS_TABLE",),
    "tokens_table": ("TOKENS_TABLE",),
    "integrators_table": ("INTEGRATORS_TABLE",),
    "deliveries_table": ("DELIVERIES_TABLE",),
    "idempotency_table": ("IDEMPOTENCY_TABLE",),
    "orders_queue_url": ("ORDERS_QUEUE_URL",),
    "orders_queue_name": ("ORDERS_QUEUE_NAME",),
    "notifications_topic_arn": ("NOTIFICATIONS_TOPIC_ARN",),
    "notifications_topic_name": ("NOTIFICATIONS_TOPIC_NAME",),
    "secrets_prefix": ("SECRETS_PREFIX",),
    "public_base_url": ("PUBLIC_BASE_URL",),
    "admin_token_secret": ("ORDER_RELAY_ADMIN_TOKEN_SECRET",),
    "allow_loopback_integrators": ("ALLOW_LOOPBACK_INTEGRATORS",),
    "dispatch_max_attempts": ("DISPATCH_MAX_ATTEMPTS",),
    "dispatch_retry_delays": ("DISPATCH_RETRY_DELAYS",),
    "dispatch_connect_timeout": ("DISPATCH_CONNECT_TIMEOUT",),
    "partial_batch_response": ("SQS_PARTIAL_BATCH_RESPONSE",),
    "circuit_failure_threshold": ("CIRCUIT_FAILURE_THRESHOLD",),
    "circuit_cooldown_seconds": ("CIRCUIT_COOLDOWN_SECONDS",),
    "circuit_disable_after_seconds": ("CIRCUIT_DISABLE_AFTER_SECONDS",),
    "sweeper_grace_seconds": ("SWEEPER_GRACE_SECONDS",),
    "seller_orders_per_second": ("SELLER_ORDERS_PER_SECOND",),
    "callback_secret_overlap_seconds": ("CALLBACK_SECRET_OVERLAP_SECONDS",),
    "callback_secret_refresh_seconds": ("CALLBACK_SECRET_REFRESH_SECONDS",),
    "portal_link_seconds": ("PORTAL_LINK_SECONDS",),
    "portal_session_seconds": ("PORTAL_SESSION_SECONDS",),
    "tracking_table": ("TRACKING_TABLE",),
    "tracking_link_secret": ("TRACKING_LINK_SECRET",),
    "tracking_websocket_url": ("TRACKING_WEBSOCKET_URL",),
    "tracking_management_url": ("TRACKING_MANAGEMENT_URL",),
    "tracking_link_ttl_seconds": ("TRACKING_LINK_TTL_SECONDS",),
    "tracking_link_max_age_seconds": ("TRACKING_LINK_MAX_AGE_SECONDS",),
}


def _admin_token_hash() -> str | None:
    """The bootstrap admin token is kept only as a SHA-256 digest, whichever form it was given in."""
    if digest := os.environ.get("ORDER_RELAY_ADMIN_TOKEN_SHA256"):
        return digest.lower()
    if token := os.environ.get("ORDER_RELAY_ADMIN_TOKEN"):
        return hashlib.sha256(token.encode()).hexdigest()
    return None


@cache
def get_settings() -> Settings:
    values: dict[str, object] = {}
    for field, names in _ENV.items():
        for name in names:
            if (value := os.environ.get(name)) not in (None, ""):
                values[field] = value
                break
    values["admin_token_sha256"] = _admin_token_hash()
    return Settings.model_validate(values)


def reset_settings() -> None:
    """Forget the cached settings (tests, the local runner after it changes the environment)."""
    get_settings.cache_clear()
