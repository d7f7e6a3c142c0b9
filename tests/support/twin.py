"""The service on its in-memory twin: repositories from `chalicelib.db.memory`, and the two other boundaries a
use case crosses (the orders queue and the notifications topic) recorded in lists. No moto, no HTTP: a use case
runs in about a millisecond, so its branches can be tested one by one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from pydantic import BaseModel

from chalicelib.db.memory import memory_repositories
from chalicelib.db.repository import Repositories, use
from chalicelib.domain.events import OrderEvent
from chalicelib.messages import Notification

# Settings the service insists on (names only: nothing is called).
ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "ORDERS_TABLE": "orders",
    "TOKENS_TABLE": "tokens",
    "INTEGRATORS_TABLE": "integrators",
    "DELIVERIES_TABLE": "deliveries",
    "IDEMPOTENCY_TABLE": "idempotency",
    "SECRETS_PREFIX": "order-relay/test/",
    "ORDERS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
    "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notifications",
    "SELLER_ORDERS_PER_SECOND": "0",  # the quota counter is a DynamoDB item of its own (functional tests)
}


@dataclass
class Twin:
    repos: Repositories
    queued: list[BaseModel] = field(default_factory=list)
    pushed: list[Notification] = field(default_factory=list)

    def events(self) -> list[tuple[str, int]]:
        """The order events queued so far, as (type, version)."""
        return [(str(m.type), m.version) for m in self.queued if isinstance(m, OrderEvent)]


@pytest.fixture
def twin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    from chalicelib import queue
    from chalicelib.notifications import publisher
    from chalicelib.settings import reset_settings

    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    state = Twin(memory_repositories())

    def send(message: BaseModel, *, delay_seconds: float = 0, correlation_id: str | None = None) -> str:
        state.queued.append(message)
        return f"m-{len(state.queued)}"

    def push(note: Notification) -> str:
        state.pushed.append(note)
        return f"p-{len(state.pushed)}"

    monkeypatch.setattr(queue, "send", send)
    monkeypatch.setattr(publisher, "_send", push)
    monkeypatch.setattr(publisher, "_once", push)
    with use(state.repos):
        yield state
    reset_settings()
