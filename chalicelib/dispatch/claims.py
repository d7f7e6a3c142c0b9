"""Claims on a delivery's state row: which job the row is sending now (`run`) and until when that claim holds
(`claimed_until`, the claiming invocation's end).

The claim is what makes a delivery job idempotent without an idempotency record: a job whose outcome is recorded
claims nothing; a duplicate arriving while the first copy is still sending raises ClaimHeld (the queue hands it
over again later); a job whose invocation died is claimed again and sent with the same webhook-id."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from chalicelib.db.concurrency import StaleWrite, retry_on_conflict
from chalicelib.db.repository import repo
from chalicelib.domain import clock
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import DeliveryState, DeliveryStatus
from chalicelib.messages import DeliveryJob
from chalicelib.observability import logger

# How long a claim holds when the invocation's end is not known (the dispatcher's Lambda timeout).
CLAIM_SECONDS = 60.0

# Per invocation, not per process: the local stack runs several pollers' invocations in one process. The batch
# hands its context to the threads it starts (contextvars.copy_context), so every delivery of it sees this value.
_invocation_ends: ContextVar[datetime | None] = ContextVar("invocation_ends", default=None)


class ClaimHeld(Exception):
    """Another copy of this job is being sent right now (a duplicate message): fail this record, the queue hands
    it over again after its visibility timeout, by when the first copy's outcome is recorded."""


def hold_until_end_of(context: Any) -> None:
    """Claims made during this invocation hold until it ends: a duplicate after that may run (the claimer died)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    ends = clock.utcnow() + timedelta(milliseconds=remaining()) if callable(remaining) else None
    _invocation_ends.set(ends)


def _deadline() -> str:
    now, ends = clock.utcnow(), _invocation_ends.get()
    if ends is not None and ends > now:
        return iso(ends)
    return iso(now + timedelta(seconds=CLAIM_SECONDS))


def runs(job: DeliveryJob, state: DeliveryState) -> bool:
    """Whether `job` should run on this row (False: it already ran, or a later job did); raises ClaimHeld when
    another copy of it holds a live claim."""
    if state.already_delivered(job.webhook_id):
        return False
    if state.webhook_id != job.webhook_id:
        return True  # the row points at another event: this job takes it over (the planner decided it should)
    ran, key = state.run or [0, 0, 0], job.run_key
    if key != ran:
        return key > ran
    if state.status is DeliveryStatus.WAITING:
        return True  # parked before it was sent; resumed now
    if state.status is not DeliveryStatus.PENDING:
        return False  # its outcome is recorded
    if state.claimed_until is not None and state.claimed_until > iso():
        raise ClaimHeld(f"delivery {job.order_id}/{job.integrator} is being sent by another invocation")
    return True  # claimed by an invocation that ended without recording: sent again, same webhook-id


def claim(job: DeliveryJob, deliver_by: datetime | None, known: DeliveryState | None) -> DeliveryState | None:
    """Point the delivery's state row at this job, conditional on `known` (the row as the caller read it; re-read
    only after a conflict). None when the job has nothing to do (see `runs`)."""
    first: list[DeliveryState | None] = [known]

    def step() -> DeliveryState | None:
        state = first.pop() if first else repo().deliveries.get_state(job.order_id, job.integrator)
        if state is not None and not state.belongs_to(job.registration_id):
            # Left by an earlier registration of this name: this registration starts afresh on it, inheriting
            # nothing (has_order, delivered ids, callback answers, the earlier partner's reports).
            claimed = fresh_row(job).model_copy(update=_pointing_at(job, deliver_by))
            return repo().deliveries.put_state(claimed, state.revision)
        if state is not None and not runs(job, state):
            return None
        if state is None:
            claimed = fresh_row(job).model_copy(update=_pointing_at(job, deliver_by))
        else:
            claimed = state.model_copy(update=_pointing_at(job, deliver_by))
        return repo().deliveries.put_state(claimed, state.revision if state else None)

    return retry_on_conflict(step)


def fresh_row(job: DeliveryJob) -> DeliveryState:
    """A row for `job`'s registration that has seen nothing yet."""
    return DeliveryState(
        order_id=job.order_id,
        integrator=job.integrator,
        registration_id=job.registration_id,
        status=DeliveryStatus.PENDING,
        event=job.event,
        webhook_id=job.webhook_id,
        updated_at=iso(),
    )


def release(claimed: DeliveryState) -> None:
    """Give the claim up after a failure before the outcome was recorded, so the job's next try need not wait for
    the claim to lapse. Best effort: if the row moved meanwhile, or this write fails too, the claim lapses."""
    try:
        repo().deliveries.put_state(claimed.model_copy(update={"claimed_until": None}), claimed.revision)
    except StaleWrite:
        pass  # the outcome was recorded after all (the failure came later), or something newer took the row
    except Exception:  # noqa: BLE001 - the claim lapses at the end of the invocation anyway
        logger.warning("claim not released; it lapses on its own", exc_info=True)


def _pointing_at(job: DeliveryJob, deliver_by: datetime | None) -> dict[str, Any]:
    return {
        "status": DeliveryStatus.PENDING,
        "event": job.event,
        "webhook_id": job.webhook_id,
        "attempts": job.attempt,
        "next_attempt_at": None,
        "raised_at": job.raised_at,
        "deliver_by": iso(deliver_by) if deliver_by is not None else None,
        "expired_at": None,
        "updated_at": iso(),
        "run": job.run_key,
        "claimed_until": _deadline(),
    }
