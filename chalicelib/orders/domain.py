"""Domain objects shared by the API, the dispatcher and the callbacks (no AWS, no HTTP)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    """Millisecond ISO-8601 in UTC: sorts as text, which the list indexes rely on."""
    return (moment or utcnow()).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_order_id() -> str:
    """`ord_` + a ULID: unique without coordination and sortable by creation time."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "ord_" + "".join(reversed(chars))


class EventType(StrEnum):
    CREATED = "order.created"
    UPDATED = "order.updated"
    CANCELLED = "order.cancelled"


class Role(StrEnum):
    ADMIN = "admin"
    SELLER = "seller"


class Principal(BaseModel):
    """Who is calling, as the authorizer established it."""

    token_id: str
    role: Role
    seller_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def may_see(self, seller_id: str) -> bool:
        return self.is_admin or self.seller_id == seller_id


class OrderEvent(BaseModel):
    """The orders-queue message contract: small, the dispatcher reads the order itself."""

    kind: str = "order_event"
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    type: EventType
    order_id: str
    version: int
    correlation_id: str | None = None
    occurred_at: str = Field(default_factory=iso)


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
