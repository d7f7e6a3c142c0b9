"""Recording one attempt: its line in the attempt log, what it means for the integrator's circuit and health,
the delivery row's new state, and what it sets going (the next attempt, the acknowledgement check, the order's
progress). The outcome is cut to the integrator's deadline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import acknowledgement, queue
from chalicelib.db.concurrency import retry_on_conflict
from chalicelib.db.repository import repo
from chalicelib.dispatch import circuit, health_tally, outcomes, transport, waiting
from chalicelib.dispatch.failures import ErrorClass
from chalicelib.dispatch.retry_policy import Outcome, final_outcome, retry_delay
from chalicelib.domain import clock, deadlines
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import DeliveryState, DeliveryStatus
from chalicelib.domain.events import EventType
from chalicelib.domain.integrator import Integrator
from chalicelib.domain.order import Order
from chalicelib.messages import DeliveryJob
from chalicelib.observability import count, logger
from chalicelib.settings import get_settings

STATUS_AFTER = {
    Outcome.DELIVERED: DeliveryStatus.DELIVERED,
    Outcome.RETRY: DeliveryStatus.RETRYING,
    Outcome.EXPIRED: DeliveryStatus.EXPIRED,
}
MAX_EXTERNAL_ID_CHARS = 200
METRIC = {
    Outcome.DELIVERED: "DeliverySucceeded",
    Outcome.RETRY: "DeliveryRetried",
    Outcome.FAILED: "DeliveryFailed",
    Outcome.EXPIRED: "DeliveryExpired",
}


def _attempt_line(
    job: DeliveryJob,
    result: transport.Result,
    outcome: Outcome,
    now: datetime,
    delay: float | None,
    template_version: int | None,
) -> dict[str, Any]:
    """The attempt log's line for this attempt."""
    return {
        "integrator": job.integrator,
        "event": job.event.value,
        "webhook_id": job.webhook_id,
        "attempt": job.attempt,
        "at": clock.iso(now),
        "outcome": outcome.value,
        "status_code": result.status_code,
        "latency_ms": round(result.latency_ms, 1),
        "error_class": result.error_class,
        "error": result.error,
        "detail": result.detail,
        "response_body": result.body_text,
        "retry_in_seconds": round(delay, 1) if delay is not None else None,
        "payload_template_version": template_version,
        "request_headers": result.request_headers,
        "request_body": result.request_body,
    }


def line_key(job: DeliveryJob) -> str:
    """The attempt line of one run of one job: a job run again (after a crash between its line and its outcome)
    rewrites its own line rather than adding a second."""
    round_, attempt, resume = job.run_key
    return f"{job.webhook_id}#{job.integrator}#{round_:04d}#{attempt:03d}#{resume:04d}"


def _probe_failed(
    job: DeliveryJob, result: transport.Result, until: str | None, now: datetime, template_version: int | None
) -> Outcome:
    """The probe did not get through: it waits again with the others, its attempt not spent."""
    line = _attempt_line(job, result, Outcome.RETRY, now, None, template_version)
    repo().deliveries.add_attempt(job.order_id, now, get_settings().attempt_ttl_days, line_key=line_key(job), **line)
    waiting.park(job.model_copy(update={"resume": job.resume + 1}), until=until, reason=f"probe failed: {result.error}")
    return Outcome.WAITING


def _next_step(
    job: DeliveryJob, result: transport.Result, now: datetime, deliver_by: datetime | None
) -> tuple[Outcome, float | None]:
    """The attempt's outcome and the delay before the next one, cut to the deadline (`expired`: none fits)."""
    settings = get_settings()
    outcome = final_outcome(result.outcome, job.attempt, settings)
    if outcome is not Outcome.RETRY:
        return outcome, None
    delay = deadlines.cut_delay(retry_delay(job.attempt, result.retry_after, settings), now, deliver_by)
    return (Outcome.RETRY, delay) if delay is not None else (Outcome.EXPIRED, None)


def _note_answer(
    job: DeliveryJob, result: transport.Result, probe: str | None, now: datetime, template_version: int | None
) -> Outcome | None:
    """What the integrator's answer says about it (health figures, its circuit); a failed probe's result."""
    health_tally.note(job.integrator, now, result.outcome.value, result.latency_ms)
    if result.outcome is Outcome.RETRY:
        state_now = circuit.record_failure(job.integrator, result.error or "retryable failure", probe=probe)
        if probe is not None:
            return _probe_failed(job, result, state_now.next_probe_at, now, template_version)
    elif result.status_code is not None:
        circuit.record_answer(job.integrator, probe=probe)
    return None


def record(
    job: DeliveryJob,
    order: Order,
    result: transport.Result,
    integrator: Integrator,
    deliver_by: datetime | None,
    *,
    claimed: DeliveryState,
    probe: str | None,
    template_version: int | None,
) -> Outcome:
    """Record the attempt: its log line and the row's outcome in one conditional write on the revision the claim
    wrote (`claimed`; the row is read again only if something changed it meanwhile, a callback say). Returns the
    outcome."""
    now = clock.utcnow()
    if result.error_class is not ErrorClass.PAYLOAD_TEMPLATE:  # nothing was sent: it says nothing of the integrator
        probe_failed = _note_answer(job, result, probe, now, template_version)
        if probe_failed is not None:
            return probe_failed
    outcome, delay = _next_step(job, result, now, deliver_by)
    if outcome is Outcome.RETRY and delay is not None:
        # Queued before the outcome is written: should the write fail, the next attempt still comes (and a
        # redelivered copy of this job, finding its run unrecorded, sends again with the same webhook-id).
        queue.send(
            job.model_copy(update={"attempt": job.attempt + 1}), delay_seconds=delay, correlation_id=job.correlation_id
        )
    line = _attempt_line(job, result, outcome, now, delay, template_version)
    first: list[DeliveryState] = [claimed]

    def step() -> DeliveryState:
        state = first.pop() if first else repo().deliveries.get_state(job.order_id, job.integrator)
        if state is None:
            raise LookupError(f"delivery {job.order_id}/{job.integrator} vanished after its claim")
        changes: dict[str, Any] = {}
        # A newer event, or this delivery's next job, may have taken the row meanwhile: then only the log and
        # what the integrator now has are recorded.
        if state.webhook_id == job.webhook_id and state.run in (None, job.run_key):
            changes.update(
                status=STATUS_AFTER.get(outcome, DeliveryStatus.FAILED),
                last_status_code=result.status_code,
                last_error=result.error,
                updated_at=iso(now),
                attempts=job.attempt,
                next_attempt_at=iso(now + timedelta(seconds=delay)) if delay is not None else None,
                claimed_until=None,
            )
            if outcome is Outcome.EXPIRED:
                changes["expired_at"] = iso(now)
        recorded = state.model_copy(update=changes)
        if outcome is Outcome.DELIVERED and job.event == EventType.CREATED:
            recorded = recorded.model_copy(update=acknowledgement.window(integrator, state, now))
        if outcome is Outcome.DELIVERED:
            recorded.mark_delivered(job.webhook_id)
            recorded.response = result.response_json
            recorded.external_id = external_id(result.response_json) or state.external_id
        return repo().deliveries.put_state_with_attempt(
            recorded, state.revision, now, get_settings().attempt_ttl_days, line_key=line_key(job), **line
        )

    stored = retry_on_conflict(step)
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
    _follow_up(job, order, outcome, stored, deliver_by)
    return outcome


def external_id(response: Any) -> str | None:
    """The integrator's own id for the order from its 2xx answer (`external_id`, else `id`), when it is one:
    text or a whole number, at most MAX_EXTERNAL_ID_CHARS, storable as UTF-8. Anything else is not kept."""
    if not isinstance(response, dict):
        return None
    value = response.get("external_id") or response.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_EXTERNAL_ID_CHARS:
        return None
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): DynamoDB cannot store it
        return None
    return value


def _follow_up(
    job: DeliveryJob,
    order: Order,
    outcome: Outcome,
    stored: DeliveryState,
    deliver_by: datetime | None,
) -> None:
    """What an attempt's outcome sets going beyond the next attempt (queued before the write): the
    acknowledgement check, what the order hears. The order's move to `dispatched` is the caller's (once per
    order event, not once per integrator)."""
    if outcome is Outcome.DELIVERED and job.event == EventType.CREATED:
        acknowledgement.check_later(stored, job.correlation_id)  # the window this 2xx opened: queue its check
    elif outcome is Outcome.FAILED:
        outcomes.on_failure(order, job)
    elif outcome is Outcome.EXPIRED and deliver_by is not None:
        outcomes.on_expired(order, job, iso(deliver_by))
