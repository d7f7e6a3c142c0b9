"""When a delivery is tried again: which answers are worth retrying, how long to wait, and Retry-After. Pure."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime
from enum import StrEnum

from chalicelib.settings import Settings

MAX_DELAY_SECONDS = 900  # SQS per-message delay limit: the retry is a delayed queue message


class Outcome(StrEnum):
    """What became of one delivery job. The first four are what an attempt's answer means (the attempt log's
    `outcome`); the rest are jobs that sent nothing, each for its own reason."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    EXPIRED = "expired"  # worth retrying, but no attempt fits before the integrator's deadline
    WAITING = "waiting"  # a failed probe: back to waiting with the others, its attempt not spent
    SKIPPED = "skipped"  # the order is gone, or the row moved on meanwhile (a newer event, a cancel)
    ALREADY_DONE = "already_done"  # a duplicate, or a job overtaken by a later one
    SUPERSEDED = "superseded"  # no longer worth sending (the order was cancelled)
    REPLAYED = "replayed"  # this very job ran already (its outcome is recorded) and the row still waits on it


def classify(status_code: int) -> Outcome:
    """2xx delivered; 408, 429 and 5xx are worth another try; any other answer will not change by retrying."""
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code in (408, 429) or status_code >= 500:
        return Outcome.RETRY
    return Outcome.FAILED


def final_outcome(outcome: Outcome, attempt: int, settings: Settings) -> Outcome:
    """A retryable failure on the last allowed attempt fails the delivery."""
    if outcome is Outcome.RETRY and attempt >= settings.dispatch_max_attempts:
        return Outcome.FAILED
    return outcome


def retry_delay(attempt: int, retry_after: float | None, settings: Settings) -> float:
    """Growing delays with +-20% jitter (so a recovering integrator is not hit by every retry at once);
    an integrator's Retry-After is honoured when longer."""
    delay = settings.retry_delay(attempt) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_DELAY_SECONDS)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), None when absent or unreadable (the
    integrator wrote it: "²" is a digit to `str.isdigit` and not to `float`; a date can be out of range)."""
    if not value:
        return None
    seconds = value.strip()
    if seconds.isascii() and seconds.isdigit():
        return float(seconds)  # a huge figure is infinity, cut to MAX_DELAY_SECONDS by retry_delay
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now))
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
