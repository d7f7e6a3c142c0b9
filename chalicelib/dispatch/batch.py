"""The SQS batch handler: hands each queue message to its handler, all records of a batch side by side, and
reports the ones that failed.

Retry design (works with plain `chalice deploy`, where Lambda ignores `batchItemFailures`): a delivery that
should be retried is put back on the queue as its own delayed `DeliveryJob`, and the original message is
acknowledged. Only unexpected errors fail a record; Powertools batch processing reports them, and unless
`SQS_PARTIAL_BATCH_RESPONSE=true` (the event source has `ReportBatchItemFailures`) the batch raises so that SQS
redelivers it: every step is idempotent, so the records that succeeded are not sent twice.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from chalicelib.acknowledgement import handle_check
from chalicelib.db.records import AttemptRecord, DeliveryRecord, OrderRecord, warm_connections
from chalicelib.dispatch import health_tally, waiting
from chalicelib.dispatch.claims import hold_until_end_of
from chalicelib.dispatch.delivery import handle_job
from chalicelib.dispatch.order_events import handle_order_event
from chalicelib.domain.integrator import Integrator
from chalicelib.integrators.cache import load_integrators
from chalicelib.messages import (
    AckCheck,
    DeliveryJob,
    DrainWaiting,
    Notification,
    OrderEvent,
    ProbeCircuit,
    parse_message,
)
from chalicelib.notifications import publisher
from chalicelib.observability import logger
from chalicelib.settings import get_settings

_records = ThreadPoolExecutor(max_workers=10, thread_name_prefix="record")


class PoisonMessage(Exception):
    """A message no handler can read; retried like any failure, then parked in the dead-letter queue."""


class BatchFailed(Exception):
    """Some records failed and Lambda would ignore batchItemFailures: fail the invocation so SQS retries."""


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run every record of the batch at once (each fans out to its integrators), then let Powertools batch
    processing collect the per-record outcomes into the partial-batch response."""
    records = event.get("Records", [])
    hold_until_end_of(context)
    integrators = _prepare()
    futures: dict[str, Future[None]] = {
        # Each record's thread runs in a copy of this invocation's context (its claims' deadline).
        r["messageId"]: _records.submit(contextvars.copy_context().run, handle_record, r, integrators)
        for r in records
    }

    def record_handler(record: SQSRecord) -> None:
        futures[record.message_id].result()

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        health_tally.flush()
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
    # Thread-local keys: the records of a batch are handled side by side.
    logger.thread_safe_append_keys(message_id=record.get("messageId"))
    try:
        try:
            message = parse_message(record["body"])
        except ValidationError as exc:
            # Fail the record: after the queue's maxReceiveCount it is parked in the dead-letter queue (alarmed),
            # where an operator can read it, instead of vanishing.
            raise PoisonMessage(f"not a known queue message: {exc.error_count()} problem(s)") from None
        logger.thread_safe_append_keys(correlation_id=getattr(message, "correlation_id", None))
        if isinstance(message, OrderEvent):
            handle_order_event(message, integrators)
        elif isinstance(message, DeliveryJob):
            handle_job(message)
        elif isinstance(message, AckCheck):
            handle_check(message)
        elif isinstance(message, Notification):
            publisher.publish(message)
        elif isinstance(message, DrainWaiting):
            waiting.drain(message)
        elif isinstance(message, ProbeCircuit):
            waiting.probe(message)
    finally:
        logger.thread_safe_clear_keys()
