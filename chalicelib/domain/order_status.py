"""The order lifecycle as data: ranks only grow, end states never change.

Progress states carry a rank (like Deliverect's monotonic status codes); an order moves only to a higher
rank. `rejected`, `cancelled` and `failed` are ends that can be reached from any state that is not an end.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"


RANKS: dict[OrderStatus, int] = {
    OrderStatus.PENDING: 0,
    OrderStatus.DISPATCHED: 10,
    OrderStatus.ACCEPTED: 20,
    OrderStatus.PREPARING: 30,
    OrderStatus.READY: 40,
    OrderStatus.PICKED_UP: 50,
    OrderStatus.DELIVERED: 60,
}
ENDS = frozenset({OrderStatus.DELIVERED, OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.FAILED})
# Statuses an integrator may report; `pending`, `dispatched` and `failed` belong to the service itself.
REPORTABLE = frozenset(
    {
        OrderStatus.ACCEPTED,
        OrderStatus.PREPARING,
        OrderStatus.READY,
        OrderStatus.PICKED_UP,
        OrderStatus.DELIVERED,
        OrderStatus.REJECTED,
        OrderStatus.CANCELLED,
    }
)
# Customer-facing changes may be made only while nothing is being prepared yet.
EDITABLE = frozenset({OrderStatus.PENDING, OrderStatus.DISPATCHED, OrderStatus.ACCEPTED})


def parse(value: str) -> OrderStatus | None:
    try:
        return OrderStatus(value)
    except ValueError:
        return None


def is_end(status: str) -> bool:
    return status in ENDS


def can_move(current: str, new: str) -> bool:
    """True when `current -> new` is a forward move: never out of an end, never to an equal or lower rank."""
    old, target = parse(current), parse(new)
    if old is None or target is None or old in ENDS or old == target:
        return False
    if target in ENDS and target not in RANKS:
        return True
    return RANKS[target] > RANKS[old]


def rank(status: str) -> int:
    parsed = parse(status)
    return RANKS.get(parsed, 100) if parsed is not None else -1


def transition_table() -> list[tuple[str, int | None, list[str]]]:
    """(state, rank, allowed next states): the lifecycle as a table, checked against the rules by a unit test."""
    return [
        (state.value, RANKS.get(state), [other.value for other in OrderStatus if can_move(state, other)])
        for state in OrderStatus
    ]
