"""Feeds an SQS queue to a Chalice SQS handler the way the Lambda event source does: batches, the Lambda record
format, delete only what succeeded, leave failures to the visibility timeout (and so to the DLQ).

Used by the local stack and by the tests, so both exercise the real handler wiring."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Chalice, SQSEventConfig
from chalice.local import LambdaContext


@dataclass
class BatchResult:
    received: int = 0
    deleted: int = 0
    failed_ids: list[str] = field(default_factory=list)
    failed_receipts: list[str] = field(default_factory=list)
    crashed: bool = False


def sqs_event_sources(app: Chalice) -> list[SQSEventConfig]:
    return [source for source in app.event_sources if isinstance(source, SQSEventConfig)]


def to_lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    records = []
    for message in messages:
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def lambda_context(name: str, timeout_seconds: int = 60) -> Any:
    context = LambdaContext(name, 512, max_runtime_ms=timeout_seconds * 1000)
    context.aws_request_id = str(uuid.uuid4())
    return context


def run_batch(
    app: Chalice,
    handler_name: str,
    sqs: Any,
    queue_url: str,
    messages: list[dict[str, Any]],
    queue_arn: str,
    region: str,
    timeout_seconds: int = 60,
) -> BatchResult:
    """Invoke the handler with one batch and settle it as Lambda would."""
    result = BatchResult(received=len(messages))
    event = to_lambda_event(messages, queue_arn, region)
    try:
        response = app.handler_map[handler_name](event, lambda_context(handler_name, timeout_seconds))
    except Exception:  # noqa: BLE001 - a crashed invocation: nothing is deleted, everything comes back
        result.crashed = True
        result.failed_ids = [m["MessageId"] for m in messages]
        result.failed_receipts = [m["ReceiptHandle"] for m in messages]
        return result
    failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
    result.failed_ids = sorted(failed)
    result.failed_receipts = [m["ReceiptHandle"] for m in messages if m["MessageId"] in failed]
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        chunk = done[start : start + 10]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
        )
        result.deleted += len(chunk)
    return result


def poll_once(
    app: Chalice,
    sqs: Any,
    queue_url: str,
    *,
    handler_name: str | None = None,
    batch_size: int | None = None,
    wait_seconds: int = 0,
    region: str = "us-east-1",
    timeout_seconds: int = 60,
) -> BatchResult:
    """Receive one batch and run it; `timeout_seconds` is the invocation's remaining time as its context says."""
    source = (
        sqs_event_sources(app)[0]
        if handler_name is None
        else next(s for s in sqs_event_sources(app) if s.name == handler_name)
    )
    messages = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=min(10, batch_size or source.batch_size),
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not messages:
        return BatchResult()
    return run_batch(app, source.name, sqs, queue_url, messages, queue_arn(sqs, queue_url), region, timeout_seconds)


_arns: dict[str, str] = {}


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The queue's ARN, asked once per URL (moto computes every attribute of the queue, walking all its messages,
    to answer this: on a 2,000-message backlog that was the local stack's costliest request)."""
    if queue_url not in _arns:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        _arns[queue_url] = attributes["QueueArn"]
    return _arns[queue_url]


def drain(
    app: Chalice,
    sqs: Any,
    queue_url: str,
    *,
    max_batches: int = 50,
    settle_seconds: float = 0.0,
    region: str = "us-east-1",
) -> list[BatchResult]:
    """Run batches until the queue has nothing visible for `settle_seconds` (long polls, no sleeping)."""
    results: list[BatchResult] = []
    deadline = time.monotonic() + settle_seconds
    while len(results) < max_batches:
        batch = poll_once(app, sqs, queue_url, region=region, wait_seconds=1 if settle_seconds else 0)
        if batch.received:
            results.append(batch)
            deadline = time.monotonic() + settle_seconds
        elif time.monotonic() >= deadline:
            break
    return results
