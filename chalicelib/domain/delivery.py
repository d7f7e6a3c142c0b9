"""Where one order stands with one integrator: the delivery state, its statuses, and its stable webhook id."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from chalicelib.domain.events import EventType
from chalicelib.domain.integrator import belongs
from chalicelib.domain.order import ulid_time

# Kept on the state row to tell a redelivered job from a new one; only the latest few matter.
DELIVERED_IDS_KEPT = 20
# Callback answers kept on the state row for replays of a webhook id: every answer while a replay of it can still
# pass the signature check (its signed timestamp is within the tolerance, plus a margin for clocks), and the
# latest CALLBACK_ANSWERS_KEPT whatever their age (an integrator retrying late with the same id). Each is ~0.2 KB
# and every write of the row is billed per KB; an order's life has about six callbacks per integrator.
CALLBACK_ANSWERS_KEPT = 10
# At most this many answers in one replay window (~25 KB, far below DynamoDB's 400 KB item): an integrator that
# sends more callbacks about one order within five minutes is told to slow down (429) rather than making the row
# grow without bound or forgetting an id a replay could still use.
CALLBACK_ANSWERS_IN_WINDOW = 100


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # claimed by a dispatcher, being sent (or left so by a crash: sent again)
    RETRYING = "retrying"  # the last attempt failed in a retryable way; the next one is queued
    WAITING = "waiting"  # held back, no attempt spent: the integrator's circuit is open or it is disabled
    DELIVERED = "delivered"  # the integrator answered 2xx to the current event
    FAILED = "failed"  # attempts used up, or refused for good; an admin may send it again
    SUPERSEDED = "superseded"  # no longer worth sending (order cancelled, integrator removed)
    EXPIRED = "expired"  # not delivered within the integrator's deadline; an admin may send it again

    @property
    def in_flight(self) -> bool:
        return self in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.WAITING)

    @property
    def queued(self) -> bool:
        """A later attempt is already on its way (a queued retry, or a parked job that will be resumed)."""
        return self in (DeliveryStatus.RETRYING, DeliveryStatus.WAITING)


class AckStatus(StrEnum):
    """Whether the integrator answered an `order.created` it accepted with a callback in its window."""

    PENDING = "pending"  # the window is open: a 2xx was received, no callback yet
    ACKNOWLEDGED = "acknowledged"  # a callback came within the window
    OVERDUE = "overdue"  # the window closed without a callback; the seller was told
    LATE = "late"  # a callback came after the window closed
    STOPPED = "stopped"  # the order was cancelled while the window was open: nothing is expected any more


class CallbackAnswer(BaseModel):
    """What a signed callback was answered, so that the same webhook id sent again gets the same answer."""

    webhook_id: str
    fingerprint: str  # of the callback's body: the same id with another body is refused, not replayed
    status_code: int
    body: dict[str, Any]
    timestamp: int | None = None  # the callback's signed webhook-timestamp (None: kept before it was recorded)

    def replayable(self, now: float, window: float) -> bool:
        """Whether a replay of this callback (same id, same signed timestamp) could still pass the signature
        check at `now`: its answer must be kept until then."""
        return self.timestamp is not None and now - self.timestamp <= window


def webhook_id(order_id: str, event: str, version: int, integrator: str) -> str:
    """Stable across retries and redeliveries of one delivery, so integrators can deduplicate on it."""
    digest = hashlib.sha256(f"{order_id}|{event}|{version}|{integrator}".encode()).hexdigest()[:32]
    return f"msg_{digest}"


class DeliveryState(BaseModel):
    """One row per order and integrator. Written only under its `revision` (optimistic concurrency): the
    dispatcher and the callbacks both change it."""

    order_id: str
    integrator: str
    status: DeliveryStatus
    event: EventType
    webhook_id: str
    attempts: int = 0
    has_order: bool = False
    delivered_webhook_ids: list[str] = []
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: str | None = None
    response: Any = None
    external_id: str | None = None
    remote_status: str | None = None
    remote_progress: str | None = None
    remote_status_at: str | None = None
    remote_message: str | None = None
    remote_eta: str | None = None
    remote_details: dict[str, Any] | None = None
    raised_at: str | None = None
    deliver_by: str | None = None
    expired_at: str | None = None
    ack: AckStatus | None = None
    ack_due_at: str | None = None
    acked_at: str | None = None
    waiting_job: dict[str, Any] | None = None  # the DeliveryJob to resume when the wait is over
    waiting_rank: int | None = None  # attempt * 1000 + resume of waiting_job: a park never goes back to an older job
    # The job the row was last claimed for, as [round, attempt, resume], and until when that claim holds (the
    # claiming invocation's end): a redelivered job is a no-op, a concurrent duplicate waits, a crashed one reruns.
    run: list[int] | None = None
    claimed_until: str | None = None
    callback_answers: list[CallbackAnswer] = []  # the integrator's last callbacks about this order, oldest first
    registration_id: str | None = None  # the integrator registration this row belongs to (see domain.integrator)
    updated_at: str
    revision: int = 0

    def already_delivered(self, webhook: str) -> bool:
        return webhook in self.delivered_webhook_ids

    def mark_delivered(self, webhook: str) -> None:
        self.has_order = True
        self.delivered_webhook_ids = [*self.delivered_webhook_ids, webhook][-DELIVERED_IDS_KEPT:]

    def callback_answer(self, webhook: str) -> CallbackAnswer | None:
        return next((answer for answer in self.callback_answers if answer.webhook_id == webhook), None)

    def belongs_to(self, registration_id: str | None) -> bool:
        return belongs(self.registration_id, registration_id)

    def replayable_answers(self, now: float, window: float) -> list[CallbackAnswer]:
        return [answer for answer in self.callback_answers if answer.replayable(now, window)]

    def with_callback_answer(self, answer: CallbackAnswer, now: float, window: float) -> list[dict[str, Any]]:
        """The row's answers with `answer` added, as stored: those a replay could still use, and the latest
        CALLBACK_ANSWERS_KEPT; older ones are dropped."""
        every = [*self.callback_answers, answer]
        latest = len(every) - CALLBACK_ANSWERS_KEPT
        kept = [entry for n, entry in enumerate(every) if n >= latest or entry.replayable(now, window)]
        return [entry.model_dump(mode="json") for entry in kept]

    def public(self) -> dict[str, Any]:
        """What the API shows: everything but the bookkeeping."""
        return self.model_dump(
            mode="json",
            exclude={
                "delivered_webhook_ids",
                "revision",
                "order_id",
                "waiting_job",
                "waiting_rank",
                "run",
                "claimed_until",
                "callback_answers",
                "registration_id",
            },
        )


TEST_PREFIX = "test_"  # the integrator portal's test events: never an order (their ids are `ord_...`)


def is_test(order_id: str) -> bool:
    return order_id.startswith(TEST_PREFIX)


def listing_sort(order_id: str) -> str:
    """`<ULID>#<order id>`: ids are `ord_<ULID>` (test events `test_<ULID>`), so this sorts by creation time."""
    return f"{order_id.partition('_')[2]}#{order_id}"


def listing_bounds(since: str, until: str, before: str | None) -> tuple[str, str]:
    """The sort keys an integrator's list reads between, inclusive: orders made in [since, until] (ISO times, or
    "0" and "~" for no bound), strictly below the cursor's row (`before`): below its ULID, which every key of that
    order extends, so a page of one still moves on."""
    low = "0" if since == "0" else ulid_time(since)
    high = "~" if until == "~" else ulid_time(until) + "~"
    return low, min(high, before.partition("#")[0]) if before else high


def listing_row(sort: str, state: DeliveryState) -> dict[str, Any]:
    """One line of an integrator's list of its deliveries (the portal), with the sort key it was listed under."""
    return {
        "sort": sort,
        "order_id": state.order_id,
        "updated_at": state.updated_at,
        "status": state.status.value,
        "event": state.event.value,
        "attempts": state.attempts,
        "last_status_code": state.last_status_code,
        "last_error": state.last_error,
    }
