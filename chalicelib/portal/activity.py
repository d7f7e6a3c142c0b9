"""What portal sessions did, per integrator, for admins to read: one item per action in the deliveries table
under `portal#<integrator>` (a key no order id can take), newest first, kept as long as the attempt log."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from chalicelib.aws import client
from chalicelib.domain import clock
from chalicelib.domain.clock import iso
from chalicelib.settings import get_settings

MAX_LISTED = 200


def _partition(integrator: str) -> str:
    return f"portal#{integrator}"


def record(integrator: str, session_id: str, action: str, detail: dict[str, Any]) -> None:
    settings = get_settings()
    now = clock.utcnow()
    client("dynamodb").put_item(
        TableName=settings.deliveries_table,
        Item={
            "order_id": {"S": _partition(integrator)},
            "sk": {"S": f"action#{iso(now)}#{secrets.token_hex(4)}"},
            "at": {"S": iso(now)},
            "session_id": {"S": session_id},
            "action": {"S": action},
            "detail": {"S": json.dumps(detail, sort_keys=True)},  # small: ids, urls, counts
            "expires_at": {"N": str(int((now + timedelta(days=settings.attempt_ttl_days)).timestamp()))},
        },
    )


def recent(integrator: str, limit: int = 100) -> list[dict[str, Any]]:
    page = client("dynamodb").query(
        TableName=get_settings().deliveries_table,
        KeyConditionExpression="order_id = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": _partition(integrator)}, ":prefix": {"S": "action#"}},
        ScanIndexForward=False,
        Limit=min(limit, MAX_LISTED),
    )
    return [
        {
            "at": item["at"]["S"],
            "session_id": item["session_id"]["S"],
            "action": item["action"]["S"],
            "detail": json.loads(item["detail"]["S"]),
        }
        for item in page.get("Items", [])
    ]
