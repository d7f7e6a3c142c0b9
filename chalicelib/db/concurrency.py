"""Optimistic concurrency: one conflict error for every conditional write, and one read-decide-write loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
MAX_TRIES = 8


class StaleWrite(Exception):
    """A conditional write found the item other than expected: changed since it was read, or already there."""


def condition_failed(exc: Exception) -> bool:
    """True when a pynamodb write failed only because its condition did not hold."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def retry_on_conflict(step: Callable[[], T], *, tries: int = MAX_TRIES) -> T:
    """Run `step` (read, decide, conditional write) until its write lands. Each try re-reads, so the decision
    is always taken on the current item; after `tries` conflicts the last StaleWrite propagates (the caller's
    own retry, an SQS redelivery or the client, takes it from there)."""
    for remaining in range(tries - 1, -1, -1):
        try:
            return step()
        except StaleWrite:
            if remaining == 0:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
