"""An integrator's circuit: closed (normal), open (no calls), half-open (one probe in flight)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Circuit(BaseModel):
    """Shared by every dispatcher: stored in DynamoDB and changed only with conditional writes on `revision`."""

    integrator: str
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    opened_at: str | None = None
    next_probe_at: str | None = None
    cooldown_seconds: float = 0.0
    probe_webhook_id: str | None = None
    probe_started_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    revision: int = 0
