"""Configuration is read once, validated, and a missing resource name is a clear error."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from chalicelib.settings import ConfigurationError, get_settings, reset_settings

REQUIRED = {
    "AWS_REGION": "eu-west-1",
    "ORDERS_TABLE": "o",
    "TOKENS_TABLE": "t",
    "INTEGRATORS_TABLE": "i",
    "DELIVERIES_TABLE": "d",
    "IDEMPOTENCY_TABLE": "id",
    "ORDERS_QUEUE_URL": "https://sqs/q",
    "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:eu-west-1:1:t",
    "SECRETS_PREFIX": "order-relay/x",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    for key in ("ORDER_RELAY_ADMIN_TOKEN", "ORDER_RELAY_ADMIN_TOKEN_SHA256", "DISPATCH_RETRY_DELAYS"):
        monkeypatch.delenv(key, raising=False)
    reset_settings()
    yield monkeypatch
    reset_settings()


def test_missing_table_name_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.delenv("ORDERS_TABLE")
    reset_settings()
    with pytest.raises(ConfigurationError, match="ORDERS_TABLE"):
        get_settings()


def test_retry_delays_parse_and_repeat_the_last(env: pytest.MonkeyPatch) -> None:
    env.setenv("DISPATCH_RETRY_DELAYS", "1, 5,30")
    env.setenv("DISPATCH_MAX_ATTEMPTS", "7")
    settings = get_settings()
    assert settings.dispatch_max_attempts == 7
    assert [settings.retry_delay(n) for n in range(1, 6)] == [1.0, 5.0, 30.0, 30.0, 30.0]


def test_admin_token_is_kept_only_as_a_digest(env: pytest.MonkeyPatch) -> None:
    env.setenv("ORDER_RELAY_ADMIN_TOKEN", "plain-token")
    settings = get_settings()
    assert settings.admin_token_sha256 == hashlib.sha256(b"plain-token").hexdigest()
    assert "plain-token" not in repr(settings)
