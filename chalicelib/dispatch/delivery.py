"""The delivery step: claim the delivery's state row, send one attempt, record its outcome, and queue the next
attempt. Idempotent per (webhook id, round, attempt): a redelivered job replays the recorded outcome."""

from __future__ import annotations

import contextlib
import random
from datetime import datetime
from typing import Any

from chalicelib import queue
from chalicelib.db import deliveries as store
from chalicelib.db import integrator_control as control
from chalicelib.db import orders as order_store
from chalicelib.db.concurrency import StaleWrite, retry_on_conflict
from chalicelib.dispatch import (
    acknowledgement,
    circuit,
    deadlines,
    outcomes,
    recording,
    transport,
    waiting,
)
from chalicelib.dispatch.circuit_policy import Admission
from chalicelib.dispatch.retry_policy import Outcome
from chalicelib.domain import clock
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import DeliveryState, DeliveryStatus
from chalicelib.domain.events import EventType
from chalicelib.domain.integrator import Integrator
from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus
from chalicelib.idempotency import REPLAYED, run_once
from chalicelib.integrators import payload
from chalicelib.integrators.registry import load_integrator
from chalicelib.messages import DeliveryJob
from chalicelib.observability import count, logger

# Outcomes of an attempt that never reached the integrator (nothing learned about it).
NOT_SENT = frozenset({"skipped", "already_delivered", "superseded", Outcome.EXPIRED.value})


class RateLimited(Exception):
    """The integrator's request-per-second budget is spent for now; `wait` seconds until a slot frees up."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.2f} s")
        self.wait = wait


def supersede(state: DeliveryState, reason: str) -> None:
    """This delivery is no longer worth sending (conditional on the state read: a concurrent change wins)."""
    with contextlib.suppress(StaleWrite):
        store.set_fields(
            state, status=DeliveryStatus.SUPERSEDED.value, last_error=reason, updated_at=iso(), next_attempt_at=""
        )


def handle_job(job: DeliveryJob) -> None:
    """A queued attempt (a retry, a resumed or rate-limited delivery, an admin's new round): run it if the delivery
    still waits for it. No row yet means it was held back before its first claim (the rate limit): run it."""
    state = store.get_state(job.order_id, job.integrator)
    superseded_by_parked = bool(
        state is not None
        and state.status is DeliveryStatus.WAITING
        and state.waiting_job
        and job.attempt < int(state.waiting_job.get("attempt", 0))
    )
    if state is not None and (state.webhook_id != job.webhook_id or not state.status.in_flight or superseded_by_parked):
        logger.info("retry no longer needed", extra={"order_id": job.order_id, "integrator": job.integrator})
        return
    integrator = load_integrator(job.integrator)
    if integrator is None:
        if state is not None:
            supersede(state, "integrator removed")
        return
    if not integrator.enabled:
        # Disabled integrators keep their deliveries, without spending an attempt; enabling resumes them.
        if not _expired_before_attempt(job, integrator):
            _park(job, integrator, until=None, reason="integrator disabled")
        return
    deliver(job, integrator)


def _park(job: DeliveryJob, integrator: Integrator, *, until: str | None, reason: str) -> None:
    """Hold the job back; with a deadline, also queue it for when the deadline passes (at most 15 minutes
    ahead, then again), so a waiting delivery becomes `expired` on time rather than when it is released."""
    waiting.park(job, until=until, reason=reason)
    deliver_by = deadlines.deliver_by(job.raised_at, integrator.deliver_within_seconds)
    if deliver_by is not None:
        delay = deadlines.delay_until(deliver_by, clock.utcnow()) or 0
        queue.send(job, delay_seconds=delay, correlation_id=job.correlation_id)


def _expired_before_attempt(job: DeliveryJob, integrator: Integrator) -> bool:
    """Past its deadline before an attempt could be made (it waited, or the queue was late): expire it here,
    before it can be admitted (or become a circuit's probe)."""
    deliver_by = deadlines.deliver_by(job.raised_at, integrator.deliver_within_seconds)
    if deliver_by is None or not deadlines.is_past(deliver_by, clock.utcnow()):
        return False
    order = order_store.get(job.order_id)
    state = _claim(job, deliver_by) if order is not None else None
    if order is not None and state is not None:
        expire(job, order, state, deliver_by)
    return True


def deliver(job: DeliveryJob, integrator: Integrator) -> None:
    """Run one attempt with this job's log keys (thread-local: deliveries of a batch run side by side), unless
    the integrator's circuit or rate limit holds it back."""
    outer = logger.thread_safe_get_current_keys()
    logger.thread_safe_append_keys(correlation_id=job.correlation_id, order_id=job.order_id, integrator=job.integrator)
    try:
        with circuit.in_flight(integrator.name):
            _admit_and_attempt(job, integrator)
    finally:
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(**outer)


def _admit_and_attempt(job: DeliveryJob, integrator: Integrator) -> None:
    if _expired_before_attempt(job, integrator):
        return
    admission = circuit.admit(integrator.name, job.webhook_id)
    if admission is Admission.WAIT:
        stored = circuit.current(integrator.name)
        _park(job, integrator, until=stored.next_probe_at, reason=f"circuit {stored.state}: {stored.last_error}")
        return
    try:
        result = run_once(
            _attempt,
            data={"job": job.model_dump(mode="json"), "probe": admission is Admission.PROBE},
            key_prefix="delivery",
            key_path="job.[webhook_id, round, attempt, resume]",
        )
    except RateLimited as limited:  # over the limit: try again shortly, without spending an attempt
        count("DeliveryRateLimited")
        delay = limited.wait + random.uniform(0, 1)  # noqa: S311 - spreading, not security
        queue.send(job, delay_seconds=delay, correlation_id=job.correlation_id)
        return
    if admission is Admission.PROBE:
        _settle_probe(job, result)


def _settle_probe(job: DeliveryJob, result: dict[str, Any]) -> None:
    """A probe must end in an answer from the integrator, or hand the probe on: otherwise the circuit stays
    half-open and everything waiting for it waits until the probe's lease runs out, again and again."""
    if result.get(REPLAYED):
        # This attempt already ran (a late duplicate became the probe): probe with a fresh run of it.
        queue.send(job.model_copy(update={"resume": job.resume + 1}), correlation_id=job.correlation_id)
    elif result.get("outcome") in NOT_SENT:
        circuit.release_probe(job.integrator, job.webhook_id)


def _attempt(data: dict[str, Any]) -> dict[str, Any]:
    job = DeliveryJob.model_validate(data["job"])
    probe = job.webhook_id if data.get("probe") else None
    integrator = load_integrator(job.integrator)
    order = order_store.get(job.order_id)
    if integrator is None or order is None:
        return {"outcome": "skipped"}
    deliver_by = deadlines.deliver_by(job.raised_at, integrator.deliver_within_seconds)
    state = _claim(job, deliver_by)
    if state is None:
        _resume_acknowledgement(job)
        return {"outcome": "already_delivered"}
    if order.status == OrderStatus.CANCELLED and job.event != EventType.CANCELLED:
        supersede(state, "order cancelled")
        return {"outcome": "superseded"}
    if deliver_by is not None and deadlines.is_past(deliver_by, clock.utcnow()):
        return expire(job, order, state, deliver_by)  # the deadline passed while it waited for a send slot
    version = integrator.template_version
    try:
        body = payload.render_body(order, job.event, integrator.payload_template)
    except payload.PayloadTemplateError as exc:
        # Retrying cannot help: the same order fails the same template. Fixed template + admin retry sends it.
        failed = transport.Result(Outcome.FAILED, None, 0.0, payload.ERROR_CLASS, str(exc))
        if probe is not None:
            circuit.release_probe(job.integrator, probe)  # nothing was sent: another delivery probes
        return recording.record(job, order, failed, integrator, deliver_by, probe=None, template_version=version)
    if integrator.max_requests_per_second:
        # Reserved last, right before the call: what the integrator sees is what the window counted.
        wait = control.reserve_send_slot(integrator.name, integrator.max_requests_per_second)
        if wait is not None:
            raise RateLimited(wait)  # forgets this attempt's idempotency record: the re-queued job runs it
    result = transport.post(integrator, event=job.event, webhook_id=job.webhook_id, body=body)
    return recording.record(job, order, result, integrator, deliver_by, probe=probe, template_version=version)


def expire(job: DeliveryJob, order: Order, state: DeliveryState, deliver_by: datetime) -> dict[str, Any]:
    """No attempt fits before the deadline: the delivery ends `expired` and the seller is told (once per round)."""
    now = clock.utcnow()
    try:
        store.set_fields(
            state,
            status=DeliveryStatus.EXPIRED.value,
            attempts=max(job.attempt - 1, 0),
            expired_at=iso(now),
            last_error=f"not delivered by {iso(deliver_by)}",
            next_attempt_at="",
            updated_at=iso(now),
        )
    except StaleWrite:
        return {"outcome": "skipped"}  # the row moved on meanwhile (a newer event, a cancel)
    logger.info(
        "delivery expired",
        extra={"order_id": job.order_id, "integrator": job.integrator, "event": job.event.value},
    )
    count(recording.METRIC[Outcome.EXPIRED])
    outcomes.on_expired(order, job, iso(deliver_by))
    return {"outcome": Outcome.EXPIRED.value}


def _resume_acknowledgement(job: DeliveryJob) -> None:
    """A redelivered job whose order.created was already accepted: its acknowledgement check may never have been
    queued (a crash right after the 2xx was saved). A second check is harmless."""
    if job.event is EventType.CREATED:
        state = store.get_state(job.order_id, job.integrator)
        if state is not None:
            acknowledgement.check_later(state, job.correlation_id)


def _claim(job: DeliveryJob, deliver_by: datetime | None) -> DeliveryState | None:
    """Point the delivery's state row at this job; None when this webhook was already delivered."""

    def step() -> DeliveryState | None:
        state = store.get_state(job.order_id, job.integrator)
        if state is not None and state.already_delivered(job.webhook_id):
            return None
        if state is None:
            claimed = DeliveryState(order_id=job.order_id, integrator=job.integrator, **_pointing_at(job, deliver_by))
        else:
            claimed = state.model_copy(update=_pointing_at(job, deliver_by))
        return store.put_state(claimed, state.revision if state else None)

    return retry_on_conflict(step)


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
    }
