"""The order as the service keeps it (no AWS, no HTTP): identity, parties, details, timeline."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.clock import iso
from chalicelib.domain.events import OrderEvent

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_order_id() -> str:
    """`ord_` + a ULID: unique without coordination and sortable by creation time."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "ord_" + "".join(reversed(chars))


class TimelineEntry(BaseModel):
    status: str
    at: str = Field(default_factory=iso)
    source: str
    message: str | None = None


class Order(BaseModel):
    id: str
    status: str
    version: int
    created_at: str
    updated_at: str
    user: dict[str, Any]
    seller: dict[str, Any]
    details: dict[str, Any]
    timeline: list[TimelineEntry] = []
    outbox: OrderEvent | None = None

    @property
    def seller_id(self) -> str:
        return str(self.seller["id"])

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    def integrator_payload(self) -> dict[str, Any]:
        """The seed's JSON shape: `{"user", "seller", "order": {"id", ...}}`."""
        return {"user": self.user, "seller": self.seller, "order": {"id": self.id, **self.details}}
