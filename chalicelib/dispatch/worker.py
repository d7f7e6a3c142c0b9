"""The dispatcher: turns orders-queue messages into deliveries, one per order and integrator.

Retry design (works with plain `chalice deploy`, where Lambda ignores `batchItemFailures`): a delivery that
should be retried is put back on the queue as its own `delivery_retry` message with `DelaySeconds` and the
next attempt number, and the original message is acknowledged. Nothing waits inside the Lambda and no
message is retried early. Only unexpected errors fail a record; Powertools batch processing reports them,
and unless `SQS_PARTIAL_BATCH_RESPONSE=true` (the event source has `ReportBatchItemFailures`) the batch
raises so that SQS redelivers it: every step is idempotent, so the records that succeeded are not sent twice.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel

from chalicelib import queue
from chalicelib.db import deliveries as store
from chalicelib.db import orders as order_store
from chalicelib.db.records import AttemptRecord, DeliveryRecord, OrderRecord, warm_connections
from chalicelib.dispatch import sender
from chalicelib.idempotency import run_once
from chalicelib.integrators.registry import Integrator, load_integrator, load_integrators
from chalicelib.notifications import publisher
from chalicelib.observability import count, logger
from chalicelib.orders.domain import EventType as OrderEventType
from chalicelib.orders.domain import Order, OrderEvent, iso
from chalicelib.orders.progress import apply_status
from chalicelib.orders.status import OrderStatus
from chalicelib.settings import get_settings

DISABLED_RECHECK_SECONDS = 900
# Module-level pools: their threads (and the clients they use) live as long as the Lambda container.
_records = ThreadPoolExecutor(max_workers=10, thread_name_prefix="record")
_deliveries = ThreadPoolExecutor(max_workers=32, thread_name_prefix="delivery")


class BatchFailed(Exception):
    """Some records failed and Lambda would ignore batchItemFailures: fail the invocation so SQS retries."""


class DeliveryJob(BaseModel):
    """One attempt to get one event of one order to one integrator; also the `delivery_retry` message."""

    kind: str = "delivery_retry"
    order_id: str
    integrator: str
    event: OrderEventType
    version: int
    webhook_id: str
    attempt: int = 1
    round: int = 1
    correlation_id: str | None = None


def webhook_id(order_id: str, event: str, version: int, integrator: str) -> str:
    """Stable across retries and redeliveries of one delivery, so integrators can deduplicate on it."""
    digest = hashlib.sha256(f"{order_id}|{event}|{version}|{integrator}".encode()).hexdigest()[:32]
    return f"msg_{digest}"


# --- batch -----------------------------------------------------------------------------------------------------


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run every record of the batch at once (each fans out to its integrators), then let Powertools batch
    processing collect the per-record outcomes into the partial-batch response."""
    records = event.get("Records", [])
    integrators = _prepare()
    futures: dict[str, Future[None]] = {r["messageId"]: _records.submit(handle_record, r, integrators) for r in records}

    def record_handler(record: SQSRecord) -> None:
        futures[record.message_id].result()

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    failures = response.get("batchItemFailures", [])
    if failures and not get_settings().partial_batch_response:
        raise BatchFailed(f"{len(failures)} of {len(records)} records failed; the batch will be redelivered")
    return dict(response)


def _prepare() -> list[Integrator] | None:
    """Read the integrators once per batch and warm the shared clients before the fan-out. A failure here is
    left to each record (it reads them again), so it is reported per record like any other."""
    try:
        warm_connections(OrderRecord, DeliveryRecord, AttemptRecord)
        return load_integrators()
    except Exception:  # noqa: BLE001
        logger.warning("could not prepare the batch; records will retry on their own", exc_info=True)
        return None


def handle_record(record: dict[str, Any], integrators: list[Integrator] | None = None) -> None:
    body = json.loads(record["body"])
    kind = body.get("kind")
    # Thread-local keys: the records of a batch are handled side by side.
    logger.thread_safe_append_keys(message_id=record.get("messageId"), correlation_id=body.get("correlation_id"))
    try:
        if kind == "order_event":
            handle_order_event(OrderEvent.model_validate(body), integrators)
        elif kind == "delivery_retry":
            handle_retry(DeliveryJob.model_validate(body))
        elif kind == "notification":
            publisher.publish(publisher.Notification.model_validate(body))
        else:
            logger.error("unknown message kind; dropped", extra={"kind": kind})
    finally:
        logger.thread_safe_clear_keys()


# --- order events ----------------------------------------------------------------------------------------------


def plan(event: OrderEvent, order: Order, integrator: Integrator, state: dict[str, Any] | None) -> str | None:
    """Which event, if any, this integrator should receive now. Pure: the rules in one place."""
    if not integrator.enabled:
        return None
    has_order = bool(state and state["has_order"])
    # A queued retry will carry the latest content; a "pending" claim left by a crash is simply run again.
    in_flight = bool(state and state["status"] == "retrying")
    if event.type is OrderEventType.CANCELLED:
        return OrderEventType.CANCELLED if has_order and integrator.wants(event.type, order.seller_id) else None
    if order.status == OrderStatus.CANCELLED:
        return None  # superseded: the cancel event decides what this integrator hears
    if event.type is OrderEventType.CREATED:
        wanted = integrator.wants(event.type, order.seller_id)
        return OrderEventType.CREATED if wanted and not has_order and not in_flight else None
    if has_order and integrator.wants(event.type, order.seller_id):
        return OrderEventType.UPDATED
    return None  # an order.created still retrying carries the latest content anyway


def handle_order_event(event: OrderEvent, integrators: list[Integrator] | None = None) -> None:
    order = order_store.get(event.order_id)
    if order is None:
        logger.warning("order event for a missing order; dropped", extra={"order_id": event.order_id})
        return
    jobs: list[tuple[DeliveryJob, Integrator]] = []
    states = {state["integrator"]: state for state in store.list_states(order.id)}  # one Query for all
    for integrator in integrators if integrators is not None else load_integrators():
        state = states.get(integrator.name)
        if (
            event.type is OrderEventType.CANCELLED
            and state
            and state["status"] in ("pending", "retrying")
            and not state["has_order"]
        ):
            _supersede(state, "order cancelled before this integrator received it")
            continue
        chosen = plan(event, order, integrator, state)
        if chosen is None:
            continue
        version = 1 if chosen == OrderEventType.CREATED else event.version
        job = DeliveryJob(
            order_id=order.id,
            integrator=integrator.name,
            event=chosen,
            version=version,
            webhook_id=webhook_id(order.id, chosen, version, integrator.name),
            correlation_id=event.correlation_id,
        )
        jobs.append((job, integrator))
    futures = [_deliveries.submit(deliver, job, integrator) for job, integrator in jobs]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if event.type is OrderEventType.CANCELLED:
        publisher.notify(order, "order.cancelled", "Your order was cancelled.", key=f"v{event.version}")
    if errors:
        raise errors[0]  # type: ignore[misc]


def _supersede(state: dict[str, Any], reason: str) -> None:
    store.set_fields(
        state["order_id"],
        state["integrator"],
        state["revision"],
        status="superseded",
        last_error=reason,
        updated_at=iso(),
        next_attempt_at="",
    )


# --- retries ---------------------------------------------------------------------------------------------------


def handle_retry(job: DeliveryJob) -> None:
    state = store.get_state(job.order_id, job.integrator)
    if state is None or state["webhook_id"] != job.webhook_id or state["status"] not in ("retrying", "pending"):
        logger.info("retry no longer needed", extra={"order_id": job.order_id, "integrator": job.integrator})
        return
    integrator = load_integrator(job.integrator)
    if integrator is None:
        _supersede(state, "integrator removed")
        return
    if not integrator.enabled:
        # Disabled integrators keep their pending deliveries: look again later, without spending an attempt.
        queue.send(job, delay_seconds=DISABLED_RECHECK_SECONDS, correlation_id=job.correlation_id)
        return
    deliver(job, integrator)


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Growing delays with +-20% jitter (so a recovering integrator is not hit by every retry at once);
    an integrator's Retry-After is honoured when longer."""
    base = get_settings().retry_delay(attempt)
    delay = base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, queue.MAX_DELAY_SECONDS)


# --- one delivery ----------------------------------------------------------------------------------------------


def deliver(job: DeliveryJob, integrator: Integrator) -> None:
    """Idempotent per (webhook id, round, attempt): a redelivered message replays the recorded outcome."""
    outer = logger.thread_safe_get_current_keys()
    logger.thread_safe_append_keys(correlation_id=job.correlation_id, order_id=job.order_id, integrator=job.integrator)
    try:
        _run_delivery(job, integrator)
    finally:
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(**outer)


def _run_delivery(job: DeliveryJob, integrator: Integrator) -> None:
    run_once(
        _deliver,
        data={"job": job.model_dump(mode="json"), "integrator": integrator.name},
        key_prefix="delivery",
        key_path="job.[webhook_id, round, attempt]",
    )


def _deliver(data: dict[str, Any]) -> dict[str, Any]:
    job = DeliveryJob.model_validate(data["job"])
    integrator = load_integrator(job.integrator)
    order = order_store.get(job.order_id)
    if integrator is None or order is None:
        return {"outcome": "skipped"}
    state = _claim(job)
    if state is None:
        return {"outcome": "already_delivered"}
    if order.status == OrderStatus.CANCELLED and job.event != OrderEventType.CANCELLED:
        _supersede(state, "order cancelled")
        return {"outcome": "superseded"}
    result = sender.post(integrator, event=job.event, webhook_id=job.webhook_id, payload=order.integrator_payload())
    return _record(job, order, result)


def _update_state(job: DeliveryJob, mutate: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> Any:
    """Read-modify-write of the state row, conditional on its revision; callbacks write the same row."""
    for _ in range(8):
        state = store.get_state(job.order_id, job.integrator)
        wanted = mutate(copy.deepcopy(state))
        if wanted is None:
            return None
        if store.put_state(wanted, state["revision"] if state else None):
            return wanted
    raise store.StateConflict(f"delivery state of {job.order_id}/{job.integrator} keeps changing")


def _claim(job: DeliveryJob) -> dict[str, Any] | None:
    """Point the delivery's state row at this job; None when this webhook was already delivered."""

    def mutate(state: dict[str, Any] | None) -> dict[str, Any] | None:
        if state and job.webhook_id in (state["delivered_webhook_ids"] or []):
            return None
        base = state or {"has_order": False, "delivered_webhook_ids": [], "order_id": job.order_id}
        return {
            **base,
            "integrator": job.integrator,
            "status": "pending",
            "event": job.event.value,
            "webhook_id": job.webhook_id,
            "attempts": job.attempt,
            "next_attempt_at": None,
            "updated_at": iso(),
        }

    result: dict[str, Any] | None = _update_state(job, mutate)
    return result


def _record(job: DeliveryJob, order: Order, result: sender.Result) -> dict[str, Any]:
    settings = get_settings()
    now = datetime.now(UTC)
    outcome = result.outcome
    if outcome == "retry" and job.attempt >= settings.dispatch_max_attempts:
        outcome = "failed"
    delay = retry_delay(job.attempt, result.retry_after) if outcome == "retry" else None
    store.add_attempt(
        job.order_id,
        now,
        settings.attempt_ttl_days,
        integrator=job.integrator,
        event=job.event.value,
        webhook_id=job.webhook_id,
        attempt=job.attempt,
        at=iso(now),
        outcome=outcome,
        status_code=result.status_code,
        latency_ms=round(result.latency_ms, 1),
        error_class=result.error_class,
        error=result.error,
        response_body=result.body_text,
        retry_in_seconds=round(delay, 1) if delay is not None else None,
    )

    def mutate(state: dict[str, Any] | None) -> dict[str, Any] | None:
        assert state is not None, "claimed before sending"
        current = state["webhook_id"] == job.webhook_id
        if current:
            state.update(
                status={"retry": "retrying"}.get(outcome, outcome),
                last_status_code=result.status_code,
                last_error=result.error,
                updated_at=iso(now),
                attempts=job.attempt,
                next_attempt_at=iso(now + timedelta(seconds=delay)) if delay is not None else None,
            )
        if outcome == "delivered":
            state.update(
                has_order=True,
                response=result.response_json,
                delivered_webhook_ids=[*(state["delivered_webhook_ids"] or []), job.webhook_id][-20:],
            )
            if isinstance(result.response_json, dict):
                external = result.response_json.get("external_id") or result.response_json.get("id")
                state["external_id"] = str(external) if external is not None else state.get("external_id")
        return state

    _update_state(job, mutate)
    logger.info(
        "delivery attempt",
        extra={
            "order_id": job.order_id,
            "integrator": job.integrator,
            "event": job.event.value,
            "attempt": job.attempt,
            "outcome": outcome,
            "status_code": result.status_code,
            "latency_ms": round(result.latency_ms, 1),
        },
    )
    count({"delivered": "DeliverySucceeded", "retry": "DeliveryRetried", "failed": "DeliveryFailed"}[outcome])
    if outcome == "retry" and delay is not None:
        queue.send(
            job.model_copy(update={"attempt": job.attempt + 1}), delay_seconds=delay, correlation_id=job.correlation_id
        )
    elif outcome == "delivered" and job.event == OrderEventType.CREATED:
        _on_first_delivery(order, job.integrator)
    elif outcome == "failed":
        _on_failure(order, job, result)
    return {"outcome": outcome, "status_code": result.status_code}


def _on_first_delivery(order: Order, integrator: str) -> None:
    changed, moved = apply_status(
        order.id, OrderStatus.DISPATCHED, source="dispatcher", message=f"sent to {integrator}"
    )
    if moved and changed is not None:
        publisher.notify(changed, "order.dispatched", "Your order was sent to the shop's partners.", key="dispatched")


def _on_failure(order: Order, job: DeliveryJob, result: sender.Result) -> None:
    detail = result.error or "delivery failed"
    publisher.notify(
        order,
        "delivery.failed",
        f"We could not reach {job.integrator}: {detail}.",
        key=f"{job.integrator}:{job.webhook_id}:{job.round}",
        data={"integrator": job.integrator},
    )

    def nobody_has_it(current: Order) -> bool:
        states = store.list_states(current.id)
        return bool(states) and all(s["status"] in ("failed", "superseded") and not s["has_order"] for s in states)

    changed, moved = apply_status(
        order.id,
        OrderStatus.FAILED,
        source="dispatcher",
        message="no integrator could receive the order",
        when=nobody_has_it,
    )
    if moved and changed is not None:
        publisher.notify(changed, "order.failed", "Your order could not be placed.", key="failed")
