"""Per-seller create quotas: how many orders one seller may create per second, counted across every API
container in one counter item per seller and second (in the deliveries table beside the other control items;
its TTL removes it a minute later).

One conditional ADD per create: the write itself is the check, so there is no read and no race between
containers. A seller's counter is its own partition key, so one seller's burst never throttles another's.
"""

from __future__ import annotations

import math
import time

from botocore.exceptions import ClientError

from chalicelib.aws import client
from chalicelib.settings import get_settings

KEEP_SECONDS = 60


def take_create_slot(seller_id: str, per_second: int, now: float | None = None) -> float | None:
    """Count one create for `seller_id` in the current second; None if it fits the quota, else the seconds until
    the next second starts (the client's Retry-After)."""
    at = time.time() if now is None else now
    second = math.floor(at)
    try:
        client("dynamodb").update_item(
            TableName=get_settings().deliveries_table,
            Key={"order_id": {"S": f"quota#{seller_id}#{second}"}, "sk": {"S": "creates"}},
            UpdateExpression="ADD creates :one SET expires_at = :expires",
            ConditionExpression="attribute_not_exists(creates) OR creates < :limit",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":limit": {"N": str(per_second)},
                ":expires": {"N": str(second + KEEP_SECONDS)},
            },
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return max(0.0, second + 1 - at)
    return None
