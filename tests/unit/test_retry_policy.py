"""Which answers are retried and how long the dispatcher waits: the retry policy, without AWS."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from chalicelib.dispatch.retry_policy import (
    MAX_DELAY_SECONDS,
    Outcome,
    classify,
    final_outcome,
    parse_retry_after,
    retry_delay,
)
from chalicelib.settings import Settings


def settings(**kw: object) -> Settings:
    base: dict[str, object] = {
        "region": "us-east-1",
        "orders_table": "o",
        "tokens_table": "t",
        "integrators_table": "i",
        "deliveries_table": "d",
        "idempotency_table": "x",
        "orders_queue_url": "https://q",
        "notifications_topic_arn": "arn:t",
        "secrets_prefix": "p",
    }
    return Settings.model_validate({**base, **kw})


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (408, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (301, Outcome.FAILED),
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (404, Outcome.FAILED),
    ],
)
def test_answers_are_classified(status: int, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_the_last_allowed_attempt_fails_instead_of_retrying() -> None:
    five = settings(dispatch_max_attempts=5)
    assert final_outcome(Outcome.RETRY, 4, five) is Outcome.RETRY
    assert final_outcome(Outcome.RETRY, 5, five) is Outcome.FAILED
    assert final_outcome(Outcome.DELIVERED, 5, five) is Outcome.DELIVERED


def test_delays_grow_with_jitter_and_respect_retry_after_and_the_queue_limit() -> None:
    config = settings(dispatch_retry_delays="10,100")
    assert 8 <= retry_delay(1, None, config) <= 12
    assert 80 <= retry_delay(2, None, config) <= 120
    assert 80 <= retry_delay(7, None, config) <= 120  # the last delay repeats
    assert retry_delay(1, 60, config) == 60  # Retry-After is honoured when longer
    assert retry_delay(1, 5000, config) == MAX_DELAY_SECONDS


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0
