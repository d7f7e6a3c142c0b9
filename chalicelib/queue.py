"""The orders queue: every message the dispatcher consumes goes through here."""

from __future__ import annotations

from pydantic import BaseModel

from chalicelib.aws import sqs
from chalicelib.settings import get_settings

MAX_DELAY_SECONDS = 900  # SQS per-message delay limit
_resolved: dict[str, str] = {}


def queue_url() -> str:
    """The configured URL, or the URL of the configured queue name (looked up once per container)."""
    settings = get_settings()
    if settings.orders_queue_url:
        return settings.orders_queue_url
    name = settings.orders_queue_name or ""
    if name not in _resolved:
        _resolved[name] = sqs().get_queue_url(QueueName=name)["QueueUrl"]
    return _resolved[name]


def topic_arn() -> str:
    """The configured ARN, or the named topic's ARN in the queue's account (the queue URL names the account)."""
    settings = get_settings()
    if settings.notifications_topic_arn:
        return settings.notifications_topic_arn
    account = queue_url().rstrip("/").split("/")[-2]
    return f"arn:aws:sns:{settings.region}:{account}:{settings.notifications_topic_name}"


def send(message: BaseModel, *, delay_seconds: float = 0, correlation_id: str | None = None) -> str:
    attributes = {"kind": {"DataType": "String", "StringValue": str(getattr(message, "kind", "message"))}}
    if correlation_id:
        attributes["correlation_id"] = {"DataType": "String", "StringValue": correlation_id}
    response = sqs().send_message(
        QueueUrl=queue_url(),
        MessageBody=message.model_dump_json(),
        DelaySeconds=max(0, min(MAX_DELAY_SECONDS, round(delay_seconds))),
        MessageAttributes=attributes,  # type: ignore[arg-type]
    )
    return response["MessageId"]


def forget_resolved() -> None:
    _resolved.clear()
