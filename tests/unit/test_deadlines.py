"""Delivery deadlines and acknowledgement windows as arithmetic, without AWS: when the retry schedule is cut,
and what a callback makes of a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.clock import iso
from chalicelib.domain.deadlines import (
    MAX_QUEUE_DELAY_SECONDS,
    ack_after_callback,
    cut_delay,
    delay_until,
    deliver_by,
    is_past,
)
from chalicelib.domain.delivery import AckStatus

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def schedule(delays: list[float], within: float) -> list[float]:
    """When attempts happen for a delivery that always fails retryably (times after the event was raised)."""
    deadline = deliver_by(iso(T0), within)
    now, times = T0, [0.0]
    for delay in delays:
        cut = cut_delay(delay, now, deadline)
        if cut is None:
            break
        now += timedelta(seconds=round(cut))  # SQS delays are whole seconds
        times.append((now - T0).total_seconds())
    return times


def test_delays_1_2_4_8_with_a_5_second_deadline_give_attempts_at_0_1_3_and_4() -> None:
    # 0 + 1 = 1, + 2 = 3; the 4 s delay would land at 7, so it is cut to 1 s (4 s); 8 s no longer fits.
    assert schedule([1, 2, 4, 8], within=5) == [0, 1, 3, 4]


def test_no_deadline_leaves_the_schedule_alone() -> None:
    assert cut_delay(300, T0, None) == 300
    assert deliver_by(iso(T0), None) is None
    assert deliver_by(None, 60) is None, "a job queued before deadlines existed has no deadline"


@pytest.mark.parametrize(
    ("delay", "now", "expected"),
    [
        (4.0, 0.0, 4.0),  # lands at 4, before 5 - 0.5: unchanged
        (4.5, 0.0, 4.5),  # lands at 4.5 exactly on the guard: unchanged
        (4.6, 0.0, 4.0),  # would land too close to the deadline: whole seconds that fit
        (30.0, 2.0, 2.0),
        (30.0, 3.4, 1.0),
        (30.0, 3.6, None),  # less than a second of room: no attempt fits
        (1.0, 5.0, None),
        (1.0, 9.0, None),
    ],
)
def test_cut_delay(delay: float, now: float, expected: float | None) -> None:
    assert cut_delay(delay, at(now), at(5)) == expected


def test_an_attempt_at_or_after_the_deadline_is_late() -> None:
    assert not is_past(at(5), at(4.999))
    assert is_past(at(5), at(5)) and is_past(at(5), at(60))
    assert not is_past(None, at(10**6))


def test_delay_until_chains_long_windows_in_15_minute_hops() -> None:
    assert delay_until(at(3), T0) == 3
    assert delay_until(at(2.2), T0) == 3, "never early: rounded up"
    assert delay_until(at(3600), T0) == MAX_QUEUE_DELAY_SECONDS
    assert delay_until(at(3600), at(3000)) == 600
    assert delay_until(at(3), at(3)) is None and delay_until(at(3), at(4)) is None


@pytest.mark.parametrize(
    ("ack", "now", "expected"),
    [
        (AckStatus.PENDING, 2.0, AckStatus.ACKNOWLEDGED),
        (AckStatus.PENDING, 3.0, AckStatus.ACKNOWLEDGED),  # on the dot still counts
        (AckStatus.PENDING, 3.5, AckStatus.LATE),  # window closed, its check has not run yet
        (AckStatus.OVERDUE, 10.0, AckStatus.LATE),
        (AckStatus.ACKNOWLEDGED, 1.0, None),
        (AckStatus.LATE, 20.0, None),
        (AckStatus.STOPPED, 1.0, None),
        (None, 1.0, None),  # an integrator without a window
    ],
)
def test_what_a_callback_makes_of_the_window(ack: AckStatus | None, now: float, expected: AckStatus | None) -> None:
    assert ack_after_callback(ack, iso(at(3)), at(now)) == expected
