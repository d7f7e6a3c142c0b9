"""The delivery step: claim the delivery's state row, send one attempt, record its outcome, and queue the next
attempt.

Idempotent per (webhook id, round, attempt, resume) through the state row alone, with no idempotency record: the
claim (see `claims`) and the outcome are conditional writes of the row."""

from __future__ import annotations

import contextlib
import random
from datetime import datetime
from typing import NamedTuple

from chalicelib import acknowledgement, queue
from chalicelib.db import integrator_control as control
from chalicelib.db.concurrency import StaleWrite
from chalicelib.db.repository import repo
from chalicelib.dispatch import (
    circuit,
    claims,
    failures,
    outcomes,
    recording,
    transport,
    waiting,
)
from chalicelib.dispatch.circuit_policy import Admission
from chalicelib.dispatch.failures import ErrorClass
from chalicelib.dispatch.retry_policy import Outcome
from chalicelib.domain import clock, deadlines
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import DeliveryState, DeliveryStatus
from chalicelib.domain.events import EventType
from chalicelib.domain.integrator import Integrator, belongs
from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus
from chalicelib.integrators import payload
from chalicelib.integrators.cache import load_integrator
from chalicelib.messages import DeliveryJob
from chalicelib.observability import count, logger

# Outcomes of an attempt that never reached the integrator (nothing learned about it).
NOT_SENT = frozenset({Outcome.SKIPPED, Outcome.ALREADY_DONE, Outcome.SUPERSEDED, Outcome.EXPIRED})


class RateLimited(Exception):
    """The integrator's request-per-second budget is spent for now; `wait` seconds until a slot frees up."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.2f} s")
        self.wait = wait


def supersede(state: DeliveryState, reason: str) -> None:
    """This delivery is no longer worth sending (conditional on the state read: a concurrent change wins)."""
    with contextlib.suppress(StaleWrite):
        repo().deliveries.set_fields(
            state, status=DeliveryStatus.SUPERSEDED.value, last_error=reason, updated_at=iso(), next_attempt_at=""
        )


def handle_job(job: DeliveryJob) -> None:
    """A queued attempt (a retry, a resumed or rate-limited delivery, an admin's new round): run it if the delivery
    still waits for it. No row yet means it was held back before its first claim (the rate limit): run it."""
    state = repo().deliveries.get_state(job.order_id, job.integrator)
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
    if integrator is None or not belongs(job.registration_id, integrator.registration_id):
        # Removed, or removed and registered again: the job was for a registration that is gone. Its row ends
        # here (not a later registration's row, should one have taken it over), and nothing is sent.
        if state is not None and state.belongs_to(job.registration_id):
            supersede(state, "integrator removed")
        return
    if not integrator.enabled:
        # Disabled integrators keep their deliveries, without spending an attempt; enabling resumes them.
        if not _expired_before_attempt(job, integrator, None, state):
            _park(job, integrator, until=None, reason="integrator disabled")
        return
    attempted = deliver(job, integrator, state)
    if attempted.delivered_created and attempted.order is not None:
        outcomes.on_first_delivery(attempted.order, integrator.name)


def _park(job: DeliveryJob, integrator: Integrator, *, until: str | None, reason: str) -> None:
    """Hold the job back; with a deadline, also queue it for when the deadline passes (at most 15 minutes
    ahead, then again), so a waiting delivery becomes `expired` on time rather than when it is released."""
    waiting.park(job, until=until, reason=reason)
    deliver_by = deadlines.deliver_by(job.raised_at, integrator.deliver_within_seconds)
    if deliver_by is not None:
        delay = deadlines.delay_until(deliver_by, clock.utcnow()) or 0
        queue.send(job, delay_seconds=delay, correlation_id=job.correlation_id)


def _expired_before_attempt(
    job: DeliveryJob, integrator: Integrator, order: Order | None, state: DeliveryState | None
) -> bool:
    """Past its deadline before an attempt could be made (it waited, or the queue was late): expire it here,
    before it can be admitted (or become a circuit's probe)."""
    deliver_by = deadlines.deliver_by(job.raised_at, integrator.deliver_within_seconds)
    if deliver_by is None or not deadlines.is_past(deliver_by, clock.utcnow()):
        return False
    order = order if order is not None else repo().orders.get(job.order_id)
    try:
        claimed = claims.claim(job, deliver_by, state) if order is not None else None
    except claims.ClaimHeld:
        return True  # another copy of this job holds it: it expires it (nothing is sent either way)
    if order is not None and claimed is not None:
        expire(job, order, claimed, deliver_by)
    return True


class Attempted(NamedTuple):
    """What `deliver` did: the attempt's outcome (None: held back, nothing sent) and the order it read or was given."""

    outcome: Outcome | None
    order: Order | None
    job: DeliveryJob

    @property
    def delivered_created(self) -> bool:
        """The integrator accepted `order.created`: it has the order, which is now `dispatched`."""
        return self.outcome is Outcome.DELIVERED and self.job.event is EventType.CREATED


def deliver(
    job: DeliveryJob, integrator: Integrator, state: DeliveryState | None, order: Order | None = None
) -> Attempted:
    """Run one attempt with this job's log keys (thread-local: deliveries of a batch run side by side), unless
    the integrator's circuit or rate limit holds it back. `state` (None: no row yet) and `order` (None: read it
    here, once) are what the caller read a moment ago: the claim is conditional on that state and re-reads the
    row only if it moved meanwhile."""
    outer = logger.thread_safe_get_current_keys()
    logger.thread_safe_append_keys(correlation_id=job.correlation_id, order_id=job.order_id, integrator=job.integrator)
    try:
        with circuit.in_flight(integrator.name):
            return _admit_and_attempt(job, integrator, state, order)
    finally:
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(**outer)


def _admit_and_attempt(
    job: DeliveryJob, integrator: Integrator, state: DeliveryState | None, order: Order | None
) -> Attempted:
    if _expired_before_attempt(job, integrator, order, state):
        return Attempted(Outcome.EXPIRED, order, job)
    admission = circuit.admit(integrator.name, job.webhook_id)
    if admission is Admission.WAIT:
        stored = circuit.current(integrator.name)
        _park(job, integrator, until=stored.next_probe_at, reason=f"circuit {stored.state}: {stored.last_error}")
        return Attempted(None, order, job)
    order = order if order is not None else repo().orders.get(job.order_id)
    outcome = Outcome.SKIPPED if order is None else _claim_and_attempt(job, integrator, state, order, admission)
    if admission is Admission.PROBE:
        _settle_probe(job, outcome)
    return Attempted(outcome, order, job)


def _settle_probe(job: DeliveryJob, outcome: Outcome | None) -> None:
    """A probe must end in an answer from the integrator, or hand the probe on: otherwise the circuit stays
    half-open and everything waiting for it waits until the probe's lease runs out, again and again."""
    if outcome is Outcome.REPLAYED:
        # This attempt already ran (a late duplicate became the probe): probe with a fresh run of it.
        queue.send(job.model_copy(update={"resume": job.resume + 1}), correlation_id=job.correlation_id)
    elif outcome in NOT_SENT:
        circuit.release_probe(job.integrator, job.webhook_id)


def _claim_and_attempt(
    job: DeliveryJob, integrator: Integrator, state: DeliveryState | None, order: Order, admission: Admission
) -> Outcome | None:
    deliver_by = deadlines.deliver_by(job.raised_at, integrator.deliver_within_seconds)
    claimed = claims.claim(job, deliver_by, state)
    if claimed is None:  # a duplicate, or a job overtaken: read the row again to tell what it should do
        seen = repo().deliveries.get_state(job.order_id, job.integrator)
        _resume_acknowledgement(job, seen)
        replayed = (
            seen is not None
            and seen.status is DeliveryStatus.RETRYING
            and seen.webhook_id == job.webhook_id
            and seen.run == job.run_key
        )
        return Outcome.REPLAYED if replayed else Outcome.ALREADY_DONE
    probe = job.webhook_id if admission is Admission.PROBE else None
    try:
        return _attempt(job, integrator, order, claimed, deliver_by, probe)
    except RateLimited as limited:  # over the limit: try again shortly, without spending an attempt
        claims.release(claimed)
        count("DeliveryRateLimited")
        delay = limited.wait + random.uniform(0, 1)  # noqa: S311 - spreading, not security
        queue.send(job, delay_seconds=delay, correlation_id=job.correlation_id)
        return None
    except Exception:
        claims.release(claimed)  # nothing recorded: the queue's next try runs it again at once
        raise


def _attempt(
    job: DeliveryJob,
    integrator: Integrator,
    order: Order,
    claimed: DeliveryState,
    deliver_by: datetime | None,
    probe: str | None,
) -> Outcome:
    if order.status == OrderStatus.CANCELLED and job.event != EventType.CANCELLED:
        supersede(claimed, "order cancelled")
        return Outcome.SUPERSEDED
    if deliver_by is not None and deadlines.is_past(deliver_by, clock.utcnow()):
        return expire(job, order, claimed, deliver_by)  # the deadline passed while it waited for a send slot
    version = integrator.template_version
    try:
        body = payload.render_body(order, job.event, integrator.payload_template)
    except payload.PayloadTemplateError as exc:
        # Retrying cannot help: the same order fails the same template. Fixed template + admin retry sends it.
        # The reason (jmespath's words about the admin's template) goes to the admin-only attempt log.
        failed = transport.Result(
            Outcome.FAILED, None, 0.0, ErrorClass.PAYLOAD_TEMPLATE, failures.TEMPLATE_FAILED, detail=str(exc)[:1000]
        )
        if probe is not None:
            circuit.release_probe(job.integrator, probe)  # nothing was sent: another delivery probes
        return recording.record(
            job, order, failed, integrator, deliver_by, claimed=claimed, probe=None, template_version=version
        )
    send_by = None
    if integrator.max_requests_per_second:
        # Reserved last, right before the call: what the integrator sees is what the window counted.
        slot = control.reserve_send_slot(integrator.name, integrator.max_requests_per_second, order.seller_id)
        if slot.send_by is None:
            raise RateLimited(slot.wait)  # the claim is released: the re-queued job runs this attempt
        send_by = slot.send_by
    try:
        result = transport.post(integrator, event=job.event, webhook_id=job.webhook_id, body=body, send_by=send_by)
    except transport.SendWindowMissed as missed:
        # Held up past its slot (a loaded container): sending now could exceed the limit. Nothing was sent.
        logger.info(
            "send slot missed", extra={"order_id": job.order_id, "integrator": job.integrator, "why": str(missed)}
        )
        raise RateLimited(0.0) from missed
    return recording.record(
        job, order, result, integrator, deliver_by, claimed=claimed, probe=probe, template_version=version
    )


def expire(job: DeliveryJob, order: Order, state: DeliveryState, deliver_by: datetime) -> Outcome:
    """No attempt fits before the deadline: the delivery ends `expired` and the seller is told (once per round)."""
    now = clock.utcnow()
    try:
        repo().deliveries.set_fields(
            state,
            status=DeliveryStatus.EXPIRED.value,
            attempts=max(job.attempt - 1, 0),
            expired_at=iso(now),
            last_error=f"not delivered by {iso(deliver_by)}",
            next_attempt_at="",
            updated_at=iso(now),
        )
    except StaleWrite:
        return Outcome.SKIPPED  # the row moved on meanwhile (a newer event, a cancel)
    logger.info(
        "delivery expired",
        extra={"order_id": job.order_id, "integrator": job.integrator, "event": job.event.value},
    )
    count(recording.METRIC[Outcome.EXPIRED])
    outcomes.on_expired(order, job, iso(deliver_by))
    return Outcome.EXPIRED


def _resume_acknowledgement(job: DeliveryJob, state: DeliveryState | None) -> None:
    """A redelivered job whose order.created was already accepted: its acknowledgement check may never have been
    queued (a crash right after the 2xx was saved). A second check is harmless."""
    if job.event is EventType.CREATED:
        if state is not None and state.already_delivered(job.webhook_id):
            acknowledgement.check_later(state, job.correlation_id)
