"""One place that reads the environment.

Read lazily (never at import): `chalice.test.Client` and the Lambda runtime only set the stage's
variables around an invocation, and tests change them between cases (`reset_settings`).
"""

from __future__ import annotations

import hashlib
import os
from functools import cache

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

# The dispatcher's SQS event source concurrency when a stage does not set DISPATCH_MAX_CONCURRENCY.
DEFAULT_DISPATCH_MAX_CONCURRENCY = 5


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed: fail loudly at first use, never guess a name."""


class Settings(BaseModel):
    region: str
    orders_table: str
    tokens_table: str
    integrators_table: str
    deliveries_table: str
    idempotency_table: str
    orders_queue_url: str | None = None
    orders_queue_name: str | None = None
    notifications_topic_arn: str | None = None
    notifications_topic_name: str | None = None
    secrets_prefix: str
    admin_token_sha256: str | None = None
    admin_token_secret: str | None = None
    public_base_url: str | None = None
    allow_loopback_integrators: bool = False
    dispatch_max_attempts: int = Field(default=5, ge=1, le=50)
    dispatch_retry_delays: tuple[float, ...] = (5.0, 30.0, 120.0, 300.0)
    dispatch_connect_timeout: float = 3.05
    partial_batch_response: bool = False
    circuit_failure_threshold: int = Field(default=5, ge=1, le=1000)
    circuit_cooldown_seconds: float = Field(default=30.0, gt=0, le=900)
    circuit_disable_after_seconds: float = Field(default=86400.0, gt=0)
    sweeper_grace_seconds: int = 60
    idempotency_ttl_seconds: int = 24 * 3600
    attempt_ttl_days: int = 30

    @field_validator("dispatch_retry_delays", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _queue_and_topic_named(self) -> Settings:
        # `chalice deploy` stages carry names (account-free); the packaged template passes the URL and ARN.
        if not (self.orders_queue_url or self.orders_queue_name):
            raise ValueError("set ORDERS_QUEUE_URL or ORDERS_QUEUE_NAME")
        if not (self.notifications_topic_arn or self.notifications_topic_name):
            raise ValueError("set NOTIFICATIONS_TOPIC_ARN or NOTIFICATIONS_TOPIC_NAME")
        return self

    def retry_delay(self, attempt: int) -> float:
        """Base delay before attempt `attempt + 1`; the last configured delay repeats."""
        delays = self.dispatch_retry_delays or (0.0,)
        return delays[min(attempt - 1, len(delays) - 1)]


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
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = ", ".join(
            f"{_ENV.get(str(err['loc'][0]), (err['loc'][0],))[0] if err['loc'] else 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"order-relay is misconfigured: {problems}") from exc


def reset_settings() -> None:
    """Forget the cached settings (tests, the local runner after it changes the environment)."""
    get_settings.cache_clear()
