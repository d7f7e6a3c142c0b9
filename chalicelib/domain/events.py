"""Order events: what integrators subscribe to (`X-Order-Event`) and the record of one change to deliver."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from chalicelib.domain.clock import iso


class EventType(StrEnum):
    CREATED = "order.created"
    UPDATED = "order.updated"
    CANCELLED = "order.cancelled"


class OrderEvent(BaseModel):
    """One change to an order, kept in the order's outbox until the queue has it. Small on purpose: the
    dispatcher reads the order itself, so a late message never carries stale content."""

    kind: Literal["order_event"] = "order_event"
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    type: EventType
    order_id: str
    version: int
    correlation_id: str | None = None
    occurred_at: str = Field(default_factory=iso)
