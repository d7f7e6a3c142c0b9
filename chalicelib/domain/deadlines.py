"""Business-time limits on a delivery, as pure arithmetic: when it must be done by, whether the next attempt
still fits before that, and what a callback means for an acknowledgement window. No I/O, so the delivery step,
the circuit breaker's waiting path and the acknowledgement check all decide the same way."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from chalicelib.domain.clock import parse_iso
from chalicelib.domain.delivery import AckStatus

# An attempt is aimed at least this long before the deadline: SQS delays are whole seconds (a delay is rounded
# by up to 0.5 s), so an attempt scheduled to fit never lands after the deadline.
GUARD_SECONDS = 0.5
# A delay shortened to beat the deadline is still at least this long: a deadline never turns backoff into
# hammering an integrator that is already failing.
MIN_DELAY_SECONDS = 1.0
MAX_QUEUE_DELAY_SECONDS = 900  # SQS per-message delay limit


def deliver_by(raised_at: str | None, within_seconds: float | None) -> datetime | None:
    """The moment after which no attempt is made; None when the integrator has no deadline (or the job
    predates deadlines and carries no `raised_at`)."""
    if raised_at is None or within_seconds is None:
        return None
    return parse_iso(raised_at) + timedelta(seconds=within_seconds)


def is_past(deadline: datetime | None, now: datetime) -> bool:
    """True when an attempt made now would be late: check this just before sending, whatever the path."""
    return deadline is not None and now >= deadline


def cut_delay(delay: float, now: datetime, deadline: datetime | None) -> float | None:
    """The delay before the next attempt: unchanged when that attempt lands before the deadline, shortened to
    the whole seconds still available when it would not, None when no attempt fits any more."""
    if deadline is None:
        return delay
    room = (deadline - now).total_seconds() - GUARD_SECONDS
    if delay <= room:
        return delay
    shortened = float(math.floor(room))
    return shortened if shortened >= MIN_DELAY_SECONDS else None


def ack_due(now: datetime, within_seconds: float) -> datetime:
    return now + timedelta(seconds=within_seconds)


def delay_until(due_at: datetime, now: datetime) -> int | None:
    """How long a queued timer (an acknowledgement check, a waiting delivery's deadline) should wait before
    looking again: whole seconds, never early, at most the SQS limit (so a longer wait is a chain of messages,
    one per 15 minutes); None once `due_at` has passed."""
    remaining = (due_at - now).total_seconds()
    if remaining <= 0:
        return None
    return min(math.ceil(remaining), MAX_QUEUE_DELAY_SECONDS)


def ack_after_callback(ack: AckStatus | None, due_at: str | None, now: datetime) -> AckStatus | None:
    """What a callback from the integrator makes of its acknowledgement; None when it changes nothing (no
    window, already answered, or the clock was stopped)."""
    if ack is AckStatus.OVERDUE:
        return AckStatus.LATE
    if ack is AckStatus.PENDING:
        if due_at is not None and now > parse_iso(due_at):
            return AckStatus.LATE  # the window closed before its check ran
        return AckStatus.ACKNOWLEDGED
    return None
