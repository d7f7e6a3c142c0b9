"""The order as the service keeps it (no AWS, no HTTP): identity, parties, details, timeline."""

from __future__ import annotations

import os
import time
from typing import Any, NotRequired, TypedDict

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from chalicelib.domain.clock import iso
from chalicelib.domain.events import OrderEvent
from chalicelib.domain.order_status import OrderStatus

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _crockford(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid_time(moment: str) -> str:
    """The time part (10 characters) of the ULIDs made at an ISO 8601 `moment`: a bound for ranges of ids."""
    from chalicelib.domain.clock import parse_iso

    return _crockford(int(parse_iso(moment).timestamp() * 1000), 10)


def new_order_id() -> str:
    """`ord_` + a ULID: unique without coordination and sortable by creation time."""
    return "ord_" + new_ulid()


def new_ulid() -> str:
    """26 characters: 48 bits of milliseconds, then 80 random bits, in Crockford's base 32."""
    return _crockford((int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big"), 26)


class PartyData(TypedDict):
    """The customer (`user`) or the shop (`seller`) as stored, already validated by the API's `Party`."""

    id: str
    name: str
    phone: NotRequired[str | None]
    email: NotRequired[str | None]
    lat: float
    lng: float


class ItemData(TypedDict):
    id: str
    name: str
    quantity: int


class OrderDetailsData(TypedDict):
    """The seed's `order` object without its id (the order's own `id`), as stored."""

    datetime: str
    timezone: str
    user_note: NotRequired[str]
    items: list[ItemData]


class TimelineEntry(BaseModel):
    """One change of the order. `event` marks an entry that records a fact without a status change (e.g.
    `delivery.unacknowledged`); `status` is then the status the order had."""

    status: OrderStatus
    at: str = Field(default_factory=iso)
    source: str
    message: str | None = None
    event: str | None = Field(
        default=None, description="Only on entries that record a fact, not a status move (delivery.unacknowledged)"
    )

    @model_serializer(mode="wrap")
    def _without_empty_event(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("event") is None:
            data.pop("event", None)  # status entries keep their shape
        return data


class Order(BaseModel):
    id: str
    status: OrderStatus
    version: int
    created_at: str
    updated_at: str
    user: PartyData
    seller: PartyData
    details: OrderDetailsData
    timeline: list[TimelineEntry] = []
    outbox: OrderEvent | None = None
    # The outbox event was sent before the order was written (a create): the queue has it, so the sweeper need not
    # look for it and the row takes no place in the outbox index (two index writes fewer per order, issue 22).
    outbox_queued: bool = False
    # Integrators whose acknowledgement of this order is overdue (sparse index: `?delivery=overdue`).
    overdue_integrators: list[str] = []

    @property
    def seller_id(self) -> str:
        return str(self.seller["id"])

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    def integrator_payload(self) -> dict[str, Any]:
        """The seed's JSON shape: `{"user", "seller", "order": {"id", ...}}`."""
        return {"user": self.user, "seller": self.seller, "order": {"id": self.id, **self.details}}
