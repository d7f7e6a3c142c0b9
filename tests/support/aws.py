"""Helpers over moto that several suites share: what a queue holds, what the notifications topic published, and
moto's DynamoDB made atomic per write as the real service is."""

from __future__ import annotations

import json
from typing import Any

import pytest


def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each conditional write atomically; moto checks the condition and writes in two steps,
    so two threads can both pass one condition. Serialise moto's writes, as the real service does per item.

    Reads too: moto keeps a table's items in a defaultdict, so reading a missing item adds an empty partition,
    and a transaction deep-copies the table to roll back. A read in one thread during another's transaction
    failed it with "dictionary changed size during iteration" (a crashed batch, whose messages come back only
    after the visibility timeout: a delivery sent but not recorded for minutes, seen under load)."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    reads = ("get_item", "query", "scan")  # batch and transactional reads go through get_item
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", *reads):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def serialised(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialised)


def queue_messages(queue_url: str, max_messages: int = 10) -> list[dict[str, Any]]:
    """Drain what is visible on a queue now (moto, no waiting)."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=max_messages, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(dict(message) for message in batch)
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def notifications(phone_url: str) -> list[dict[str, Any]]:
    """Everything published to the topic since the last call (as the subscribed queue received it)."""
    return [json.loads(m["Body"]) for m in queue_messages(phone_url)]
