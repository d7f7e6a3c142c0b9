"""The orders queue: every message the dispatcher consumes goes through here."""

from __future__ import annotations

from pydantic import BaseModel

from chalicelib.aws import sqs
from chalicelib.settings import get_settings

MAX_DELAY_SECONDS = 900  # SQS per-message delay limit


def send(message: BaseModel, *, delay_seconds: float = 0, correlation_id: str | None = None) -> str:
    attributes = {"kind": {"DataType": "String", "StringValue": str(getattr(message, "kind", "message"))}}
    if correlation_id:
        attributes["correlation_id"] = {"DataType": "String", "StringValue": correlation_id}
    response = sqs().send_message(
        QueueUrl=get_settings().orders_queue_url,
        MessageBody=message.model_dump_json(),
        DelaySeconds=max(0, min(MAX_DELAY_SECONDS, round(delay_seconds))),
        MessageAttributes=attributes,  # type: ignore[arg-type]
    )
    return response["MessageId"]
