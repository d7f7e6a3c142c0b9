"""Per-integrator control items, kept in the deliveries table beside the delivery rows (their keys never look
like an order id): the circuit (`circuit#<name>`), the rate-limit window (`rate#<name>`) and sharded per-minute
health counters (`health#<name>#<shard>`, one item per minute). Each has its own partition key, so none of
them shares a partition's write capacity with another.

Written with the low-level client: these are counters and conditional swaps that need expressions pynamodb
does not offer (ReturnValuesOnConditionCheckFailure, ADD on attributes named at run time).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from botocore.exceptions import ClientError

from chalicelib.aws import client
from chalicelib.db.concurrency import StaleWrite, retry_on_conflict
from chalicelib.domain.circuit import Circuit
from chalicelib.settings import get_settings

HEALTH_SHARDS = 8
HEALTH_RETENTION_DAYS = 2
# The rate window is one second plus this margin, and a reserved slot must be used within the margin: a request
# reaches the integrator a little after its slot was reserved, by a varying amount, and the integrator counts
# arrivals. 5/s means at most 5 in any 1.2 s, and any two calls on one slot start at least a second apart.
MARGIN_SECONDS = 0.2
# Upper bounds (ms) of the latency histogram kept in each health bucket; percentiles are read off it.
LATENCY_BOUNDS_MS = (25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000)


class CircuitChanged(StaleWrite):
    """The circuit moved since it was read; `current` is what is stored now (no extra read needed)."""

    def __init__(self, current: Circuit) -> None:
        super().__init__(f"circuit of {current.integrator} changed")
        self.current = current


def _table() -> str:
    return get_settings().deliveries_table


def _conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# --- circuit ---------------------------------------------------------------------------------------------------


def _circuit_key(name: str) -> dict[str, Any]:
    return {"order_id": {"S": f"circuit#{name}"}, "sk": {"S": "circuit"}}


def _circuit_from(item: dict[str, Any] | None, name: str) -> Circuit:
    if not item or "doc" not in item:
        return Circuit(integrator=name)
    return Circuit.model_validate_json(item["doc"]["S"])


def get_circuit(name: str) -> Circuit:
    """The stored circuit; a closed one when none was ever written (a healthy integrator has no item)."""
    response = client("dynamodb").get_item(TableName=_table(), Key=_circuit_key(name), ConsistentRead=True)
    return _circuit_from(response.get("Item"), name)


def save_circuit(circuit: Circuit) -> Circuit:
    """Store `circuit` if the stored revision is still `circuit.revision`; raises CircuitChanged (carrying the
    stored circuit) otherwise. Returns the circuit as stored (next revision)."""
    stored = circuit.model_copy(update={"revision": circuit.revision + 1})
    item = {
        **_circuit_key(circuit.integrator),
        "doc": {"S": stored.model_dump_json()},
        "revision": {"N": str(stored.revision)},
    }
    try:
        client("dynamodb").put_item(
            TableName=_table(),
            Item=item,
            ConditionExpression="attribute_not_exists(sk) OR revision = :expected",
            ExpressionAttributeValues={":expected": {"N": str(circuit.revision)}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if _conditional_failure(exc):
            stored_item = cast("dict[str, Any] | None", exc.response.get("Item"))
            raise CircuitChanged(_circuit_from(stored_item, circuit.integrator)) from exc
        raise
    return stored


# --- rate limit: a sliding one-second window of send slots, shared fairly between sellers ---------------------

# A seller refused a slot within this many seconds still has deliveries waiting for this integrator: longer than a
# refused delivery takes to come back from the queue (its wait, rounded to whole seconds, plus polling).
ACTIVE_SECONDS = 5.0
WAITING_PREFIX = "w#"


@dataclass(frozen=True)
class SendSlot:
    """The answer of `reserve_send_slot`: a slot to be used by `send_by` (epoch seconds), or `wait` seconds."""

    send_by: float | None
    wait: float = 0.0


@dataclass(frozen=True)
class _Window:
    """The rate item as read: slot times, who holds each slot, and when each seller was last refused."""

    slots: list[float]
    owners: list[str]
    waiting: dict[str, float]

    @classmethod
    def read(cls, item: dict[str, Any] | None, limit: int) -> _Window | None:
        """None when there is no window of this size yet (a new integrator, a changed limit, an older layout)."""
        if not item or "slots" not in item or "owners" not in item or len(item["slots"]["L"]) != limit:
            return None
        waiting = {
            attr[len(WAITING_PREFIX) :]: float(value["N"])
            for attr, value in item.items()
            if attr.startswith(WAITING_PREFIX) and "N" in value
        }
        return cls([float(v["N"]) for v in item["slots"]["L"]], [v["S"] for v in item["owners"]["L"]], waiting)

    def share(self, seller: str, at: float, margin: float) -> tuple[int, list[float]]:
        """(this seller's fair share of the window, the times of the live slots it holds). Sellers holding a live
        slot or refused lately split the window evenly; alone, a seller has all of it."""
        live = [(t, o) for t, o in zip(self.slots, self.owners, strict=True) if at - t < 1.0 + margin]
        active = {o for _, o in live} | {s for s, t in self.waiting.items() if at - t < ACTIVE_SECONDS} | {seller}
        return -(-len(self.slots) // len(active)), sorted(t for t, o in live if o == seller)


def reserve_send_slot(name: str, limit: int, seller: str = "", margin: float = MARGIN_SECONDS) -> SendSlot:
    """Reserve one of `limit` send slots in any one-second window, shared by every dispatcher and fairly between
    the sellers whose deliveries wait for this integrator.

    The item keeps the times of the last `limit` sends and the seller of each; a send may take the oldest slot only
    if it is more than a second (plus `margin`) old, swapped with a conditional write. While several sellers wait,
    each may hold at most its even share of the window, so one seller's burst delays another's order by about one
    share of the window, not by the whole burst. A refused seller notes itself on the item (at most once per
    ACTIVE_SECONDS / 2: one write per seller, not per refused delivery) so the others leave it its share.

    A reserved slot is good for `margin` seconds: a call that starts later than that could land within a second of
    the slot's next user, so it must not start (`transport` refuses it). One write per reservation, plus one per
    conflict.
    """
    key = {"order_id": {"S": f"rate#{name}"}, "sk": {"S": "rate"}}

    def step() -> SendSlot:
        item = client("dynamodb").get_item(TableName=_table(), Key=key, ConsistentRead=True).get("Item")
        window = _Window.read(item, limit)
        at = time.time()  # taken after the read: the slot records when the send may start, not when we asked
        if window is None:
            _start_window(key, limit, seller, at)
            return SendSlot(send_by=at + margin)
        share, held = window.share(seller, at, margin)
        index = min(range(limit), key=lambda i: window.slots[i])
        oldest = window.slots[index]
        if at - oldest < 1.0 + margin or len(held) >= share:
            _note_waiting(key, window, seller, at)
            frees = oldest if len(held) < share else held[len(held) - share]
            return SendSlot(send_by=None, wait=max(0.0, 1.0 + margin - (at - frees)))
        _take_slot(key, limit, index, oldest, seller, at, window)
        return SendSlot(send_by=at + margin)

    try:
        return retry_on_conflict(step)  # someone took a slot meanwhile: read the window again
    except StaleWrite:
        return SendSlot(send_by=None, wait=0.2)  # heavy contention: wait a moment rather than spin


def _start_window(key: dict[str, Any], limit: int, seller: str, at: float) -> None:
    """Write a new window of `limit` slots with the first one taken; StaleWrite if another dispatcher just did."""
    try:
        client("dynamodb").put_item(
            TableName=_table(),
            Item={
                **key,
                "slots": {"L": [{"N": repr(at)}] + [{"N": "0"}] * (limit - 1)},
                "owners": {"L": [{"S": seller}] + [{"S": ""}] * (limit - 1)},
                "slot_count": {"N": str(limit)},
            },
            ConditionExpression="attribute_not_exists(sk) OR slot_count <> :limit OR attribute_not_exists(owners)",
            ExpressionAttributeValues={":limit": {"N": str(limit)}},
        )
    except ClientError as exc:
        if _conditional_failure(exc):
            raise StaleWrite(f"rate window {key['order_id']['S']}") from exc
        raise


def _take_slot(
    key: dict[str, Any], limit: int, index: int, oldest: float, seller: str, at: float, window: _Window
) -> None:
    """Swap the oldest slot for this send (StaleWrite if another send took it first), and drop the waiting notes
    of sellers no longer waiting."""
    stale = [s for s, t in window.waiting.items() if at - t >= ACTIVE_SECONDS][:20]
    names = {f"#w{i}": WAITING_PREFIX + s for i, s in enumerate(stale)}
    update = f"SET slots[{index}] = :now, owners[{index}] = :seller"
    if stale:
        update += " REMOVE " + ", ".join(names)
    try:
        client("dynamodb").update_item(
            TableName=_table(),
            Key=key,
            UpdateExpression=update,
            ConditionExpression=f"slots[{index}] = :old AND slot_count = :limit",
            ExpressionAttributeValues={
                ":now": {"N": repr(at)},
                ":old": {"N": repr(oldest) if oldest else "0"},
                ":limit": {"N": str(limit)},
                ":seller": {"S": seller},
            },
            **({"ExpressionAttributeNames": names} if names else {}),
        )
    except ClientError as exc:
        if _conditional_failure(exc):
            raise StaleWrite(f"rate window {key['order_id']['S']}") from exc
        raise


def _note_waiting(key: dict[str, Any], window: _Window, seller: str, at: float) -> None:
    """Mark this seller as waiting for a slot, unless it was marked lately."""
    if at - window.waiting.get(seller, 0.0) < ACTIVE_SECONDS / 2:
        return
    client("dynamodb").update_item(
        TableName=_table(),
        Key=key,
        UpdateExpression="SET #w = :at",
        ExpressionAttributeNames={"#w": WAITING_PREFIX + seller},
        ExpressionAttributeValues={":at": {"N": repr(at)}},
    )


# --- health counters -----------------------------------------------------------------------------------------


def minute_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def latency_bucket(latency_ms: float) -> int:
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if latency_ms <= bound:
            return index
    return len(LATENCY_BOUNDS_MS)


def add_health(name: str, minute: str, counts: dict[str, int]) -> None:
    """Add `counts` (attempts, delivered, failed, retried, l00..l14) to one random shard of `minute`'s bucket."""
    shard = random.randrange(HEALTH_SHARDS)  # noqa: S311 - load spreading, not security
    names = {f"#{n}": n for n in counts}
    values = {f":{n}": {"N": str(v)} for n, v in counts.items()}
    expires = datetime.strptime(minute, "%Y-%m-%dT%H:%M") + timedelta(days=HEALTH_RETENTION_DAYS)
    client("dynamodb").update_item(
        TableName=_table(),
        Key={"order_id": {"S": f"health#{name}#{shard}"}, "sk": {"S": minute}},
        UpdateExpression="ADD " + ", ".join(f"#{n} :{n}" for n in counts) + " SET expires_at = :expires",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={**values, ":expires": {"N": str(int(expires.timestamp()))}},
    )


def read_health(name: str, first_minute: str, last_minute: str) -> dict[str, int]:
    """Sum of every shard's counters over [first_minute, last_minute]: one Query per shard, whatever the number of
    attempts (at most one item per shard and minute)."""
    totals: dict[str, int] = {}
    dynamodb = client("dynamodb")
    for shard in range(HEALTH_SHARDS):
        kwargs: dict[str, Any] = {
            "TableName": _table(),
            "KeyConditionExpression": "order_id = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"health#{name}#{shard}"},
                ":first": {"S": first_minute},
                ":last": {"S": last_minute},
            },
        }
        while True:
            page = dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                for attr, value in item.items():
                    if attr not in ("order_id", "sk", "expires_at") and "N" in value:
                        totals[attr] = totals.get(attr, 0) + int(float(value["N"]))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return totals
