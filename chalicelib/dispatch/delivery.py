"""The delivery step: claim the delivery's state row, send one attempt, record its outcome, and queue the next
attempt. Idempotent per (webhook id, round, attempt): a redelivered job replays the recorded outcome."""

from __future__ import annotations

import contextlib
import random
from datetime import datetime, timedelta
from typing import Any

from chalicelib import queue
from chalicelib.db import deliveries as store
from chalicelib.db import integrator_control as control
from chalicelib.db import orders as order_store
from chalicelib.db.concurrency import StaleWrite, retry_on_conflict
from chalicelib.dispatch import circuit, health_tally, outcomes, transport, waiting
from chalicelib.dispatch.circuit_policy import Admission
from chalicelib.dispatch.retry_policy import Outcome, final_outcome, retry_delay
from chalicelib.domain import clock
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import DeliveryState, DeliveryStatus
from chalicelib.domain.events import EventType
from chalicelib.domain.integrator import Integrator
from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus
from chalicelib.idempotency import run_once
from chalicelib.integrators import payload
from chalicelib.integrators.registry import load_integrator
from chalicelib.messages import DeliveryJob
from chalicelib.observability import count, logger
from chalicelib.settings import get_settings


class RateLimited(Exception):
    """The integrator's request-per-second budget is spent for now; `wait` seconds until a slot frees up."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.2f} s")
        self.wait = wait


STATUS_AFTER = {Outcome.DELIVERED: DeliveryStatus.DELIVERED, Outcome.RETRY: DeliveryStatus.RETRYING}
METRIC = {Outcome.DELIVERED: "DeliverySucceeded", Outcome.RETRY: "DeliveryRetried", Outcome.FAILED: "DeliveryFailed"}


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
    if state is not None and (state.webhook_id != job.webhook_id or not state.status.in_flight):
        logger.info("retry no longer needed", extra={"order_id": job.order_id, "integrator": job.integrator})
        return
    integrator = load_integrator(job.integrator)
    if integrator is None:
        if state is not None:
            supersede(state, "integrator removed")
        return
    if not integrator.enabled:
        # Disabled integrators keep their deliveries, without spending an attempt; enabling resumes them.
        waiting.park(job, until=None, reason="integrator disabled")
        return
    deliver(job, integrator)


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
    admission = circuit.admit(integrator.name, job.webhook_id)
    if admission is Admission.WAIT:
        stored = circuit.current(integrator.name)
        waiting.park(job, until=stored.next_probe_at, reason=f"circuit {stored.state}: {stored.last_error}")
        return
    try:
        run_once(
            _attempt,
            data={"job": job.model_dump(mode="json"), "probe": admission is Admission.PROBE},
            key_prefix="delivery",
            key_path="job.[webhook_id, round, attempt, resume]",
        )
    except RateLimited as limited:  # over the limit: try again shortly, without spending an attempt
        count("DeliveryRateLimited")
        delay = limited.wait + random.uniform(0, 1)  # noqa: S311 - spreading, not security
        queue.send(job, delay_seconds=delay, correlation_id=job.correlation_id)


def _attempt(data: dict[str, Any]) -> dict[str, Any]:
    job = DeliveryJob.model_validate(data["job"])
    probe = job.webhook_id if data.get("probe") else None
    integrator = load_integrator(job.integrator)
    order = order_store.get(job.order_id)
    if integrator is None or order is None:
        return {"outcome": "skipped"}
    state = _claim(job)
    if state is None:
        return {"outcome": "already_delivered"}
    if order.status == OrderStatus.CANCELLED and job.event != EventType.CANCELLED:
        supersede(state, "order cancelled")
        return {"outcome": "superseded"}
    version = integrator.template_version
    try:
        body = payload.render_body(order, job.event, integrator.payload_template)
    except payload.PayloadTemplateError as exc:
        # Retrying cannot help: the same order fails the same template. Fixed template + admin retry sends it.
        failed = transport.Result(Outcome.FAILED, None, 0.0, payload.ERROR_CLASS, str(exc))
        return _record(job, order, failed, probe=None, template_version=version)
    if integrator.max_requests_per_second:
        # Reserved last, right before the call: what the integrator sees is what the window counted.
        wait = control.reserve_send_slot(integrator.name, integrator.max_requests_per_second)
        if wait is not None:
            raise RateLimited(wait)  # forgets this attempt's idempotency record: the re-queued job runs it
    result = transport.post(integrator, event=job.event, webhook_id=job.webhook_id, body=body)
    return _record(job, order, result, probe=probe, template_version=version)


def _claim(job: DeliveryJob) -> DeliveryState | None:
    """Point the delivery's state row at this job; None when this webhook was already delivered."""

    def step() -> DeliveryState | None:
        state = store.get_state(job.order_id, job.integrator)
        if state is not None and state.already_delivered(job.webhook_id):
            return None
        if state is None:
            claimed = DeliveryState(order_id=job.order_id, integrator=job.integrator, **_pointing_at(job))
        else:
            claimed = state.model_copy(update=_pointing_at(job))
        return store.put_state(claimed, state.revision if state else None)

    return retry_on_conflict(step)


def _pointing_at(job: DeliveryJob) -> dict[str, Any]:
    return {
        "status": DeliveryStatus.PENDING,
        "event": job.event,
        "webhook_id": job.webhook_id,
        "attempts": job.attempt,
        "next_attempt_at": None,
        "updated_at": iso(),
    }


def _log_attempt(
    job: DeliveryJob,
    result: transport.Result,
    outcome: Outcome,
    now: datetime,
    delay: float | None,
    template_version: int | None,
) -> None:
    store.add_attempt(
        job.order_id,
        now,
        get_settings().attempt_ttl_days,
        integrator=job.integrator,
        event=job.event.value,
        webhook_id=job.webhook_id,
        attempt=job.attempt,
        at=clock.iso(now),
        outcome=outcome.value,
        status_code=result.status_code,
        latency_ms=round(result.latency_ms, 1),
        error_class=result.error_class,
        error=result.error,
        response_body=result.body_text,
        retry_in_seconds=round(delay, 1) if delay is not None else None,
        payload_template_version=template_version,
    )


def _probe_failed(
    job: DeliveryJob, result: transport.Result, until: str | None, now: datetime, template_version: int | None
) -> dict[str, Any]:
    """The probe did not get through: it waits again with the others, its attempt not spent."""
    _log_attempt(job, result, Outcome.RETRY, now, None, template_version)
    waiting.park(job.model_copy(update={"resume": job.resume + 1}), until=until, reason=f"probe failed: {result.error}")
    return {"outcome": "waiting", "status_code": result.status_code}


def _note_answer(
    job: DeliveryJob, result: transport.Result, probe: str | None, now: datetime, template_version: int | None
) -> dict[str, Any] | None:
    """What the integrator's answer says about it (health figures, its circuit); a failed probe's result."""
    health_tally.note(job.integrator, now, result.outcome.value, result.latency_ms)
    if result.outcome is Outcome.RETRY:
        state_now = circuit.record_failure(job.integrator, result.error or "retryable failure", probe=probe)
        if probe is not None:
            return _probe_failed(job, result, state_now.next_probe_at, now, template_version)
    elif result.status_code is not None:
        circuit.record_answer(job.integrator, probe=probe)
    return None


def _record(
    job: DeliveryJob, order: Order, result: transport.Result, *, probe: str | None, template_version: int | None
) -> dict[str, Any]:
    settings = get_settings()
    now = clock.utcnow()
    if result.error_class != payload.ERROR_CLASS:  # a template error sent nothing: it says nothing of the integrator
        probe_failed = _note_answer(job, result, probe, now, template_version)
        if probe_failed is not None:
            return probe_failed
    outcome = final_outcome(result.outcome, job.attempt, settings)
    delay = retry_delay(job.attempt, result.retry_after, settings) if outcome is Outcome.RETRY else None
    _log_attempt(job, result, outcome, now, delay, template_version)

    def step() -> DeliveryState:
        state = store.get_state(job.order_id, job.integrator)
        if state is None:
            raise LookupError(f"delivery {job.order_id}/{job.integrator} vanished after its claim")
        changes: dict[str, Any] = {}
        if state.webhook_id == job.webhook_id:  # a newer event may have taken the row meanwhile
            changes.update(
                status=STATUS_AFTER.get(outcome, DeliveryStatus.FAILED),
                last_status_code=result.status_code,
                last_error=result.error,
                updated_at=iso(now),
                attempts=job.attempt,
                next_attempt_at=iso(now + timedelta(seconds=delay)) if delay is not None else None,
            )
        recorded = state.model_copy(update=changes)
        if outcome is Outcome.DELIVERED:
            recorded.mark_delivered(job.webhook_id)
            recorded.response = result.response_json
            if isinstance(result.response_json, dict):
                external = result.response_json.get("external_id") or result.response_json.get("id")
                recorded.external_id = str(external) if external is not None else state.external_id
        return store.put_state(recorded, state.revision)

    retry_on_conflict(step)
    logger.info(
        "delivery attempt",
        extra={
            "order_id": job.order_id,
            "integrator": job.integrator,
            "event": job.event.value,
            "attempt": job.attempt,
            "outcome": outcome.value,
            "status_code": result.status_code,
            "latency_ms": round(result.latency_ms, 1),
        },
    )
    count(METRIC[outcome])
    if outcome is Outcome.RETRY and delay is not None:
        queue.send(
            job.model_copy(update={"attempt": job.attempt + 1}), delay_seconds=delay, correlation_id=job.correlation_id
        )
    elif outcome is Outcome.DELIVERED and job.event == EventType.CREATED:
        outcomes.on_first_delivery(order, job.integrator)
    elif outcome is Outcome.FAILED:
        outcomes.on_failure(order, job, result)
    return {"outcome": outcome.value, "status_code": result.status_code}
