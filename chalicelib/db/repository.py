"""The storage interface the use cases depend on: orders and deliveries, each a small protocol with two
implementations that keep the same conditional-write semantics (a stale write raises StaleWrite in both):

- DynamoDB: the modules `db.orders` and `db.deliveries` themselves (a module satisfies a protocol; no wrapper
  class), with the pynamodb records kept inside `db/`;
- memory: `db.memory`, for use-case unit tests that run in milliseconds with no moto.

Use cases ask `repo()` for the current pair at call time (never at import), so a test swaps both with
`use(Repositories(...))` and a Lambda container uses DynamoDB without configuring anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.delivery import DeliveryState
from chalicelib.domain.order import Order
from chalicelib.domain.order_list import ListFilter, Page


class OrderRepository(Protocol):
    """Orders, written only under the version read (StaleWrite otherwise)."""

    def insert(self, order: Order) -> None:
        """Store a new order; StaleWrite if its id exists. An outbox event the queue already has
        (`order.outbox_queued`) is kept on the order but not offered to the sweeper (`pending_outbox`)."""

    def replace(self, order: Order, expected_version: int) -> None:
        """Write `order` (version already bumped) if the stored one is still `expected_version`."""

    def move_status(self, changed: Order, expected_version: int, *, clear_outbox: bool) -> None:
        """Write a status move of `changed` if still at `expected_version`; optionally clear the outbox mark."""

    def get(self, order_id: str, *, consistent: bool = True) -> Order | None: ...

    def clear_outbox(self, order_id: str, event_id: str) -> bool:
        """Clear the outbox mark if it still names `event_id`; False when a newer event replaced it."""

    def pending_outbox(self, older_than: str, limit: int = 100) -> list[str]:
        """Ids of orders whose event never reached the queue, marked before `older_than`."""

    def list_orders(self, flt: ListFilter, limit: int, cursor: str | None) -> Page:
        """Newest first; a page costs `limit` items whatever the table size; a cursor only fits its own query."""


class DeliveryRepository(Protocol):
    """Delivery state rows (one per order and integrator, under a revision) and the attempt log."""

    def get_state(self, order_id: str, integrator: str) -> DeliveryState | None: ...

    def list_states(self, order_id: str) -> list[DeliveryState]: ...

    def put_state(self, state: DeliveryState, expected_revision: int | None) -> DeliveryState:
        """Write the row if still at `expected_revision` (None: must not exist); returns it at the next revision."""

    def put_state_with_attempt(
        self,
        state: DeliveryState,
        expected_revision: int,
        moment: datetime,
        retention_days: int,
        *,
        line_key: str,
        **attempt: Any,
    ) -> DeliveryState:
        """The attempt's line (keyed by the job's run: written again, it replaces itself), then `put_state`."""

    def set_fields(self, state: DeliveryState, **fields: Any) -> None:
        """Change some fields if the row is still at `state.revision` (None values are left as they are)."""

    def add_attempt(
        self, order_id: str, moment: datetime, retention_days: int, *, line_key: str | None = None, **fields: Any
    ) -> None: ...

    def list_attempts(self, order_id: str) -> list[dict[str, Any]]: ...

    def find(self, integrator: str, status: str, since: str, until: str, limit: int = 500) -> list[DeliveryState]:
        """The oldest `failed` or `waiting` deliveries of an integrator changed between `since` and `until`."""

    def park(
        self, order_id: str, integrator: str, job: dict[str, Any], *, until: str | None, reason: str, now: str
    ) -> bool:
        """Hold a delivery back as `waiting` with the job to resume, unless delivered or overtaken (False)."""

    def oldest_waiting(self, integrator: str, limit: int, *, after: str | None = None) -> list[DeliveryState]: ...

    def count_waiting(self, integrator: str) -> int: ...

    def list_for_integrator(
        self, integrator: str, *, status: str | None, since: str, until: str, before: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the integrator's deliveries (`domain.delivery.listing_row`), newest order first, of orders
        made in [since, until] ("0" and "~": no bound), below the sort key `before`; and the sort key the next
        page reads below, None at the end. A status filter may leave a page short, still with a cursor."""


@dataclass(frozen=True)
class Repositories:
    orders: OrderRepository
    deliveries: DeliveryRepository


_current: list[Repositories] = []


def _dynamodb() -> Repositories:
    from chalicelib.db import deliveries, orders  # pynamodb is loaded only by the functions that store

    return Repositories(orders=orders, deliveries=deliveries)


def repo() -> Repositories:
    """The repositories in use: DynamoDB unless a test installed others."""
    if not _current:
        _current.append(_dynamodb())
    return _current[-1]


@contextmanager
def use(repositories: Repositories) -> Iterator[Repositories]:
    """Run the block against `repositories` (the in-memory twin in unit tests)."""
    _current.append(repositories)
    try:
        yield repositories
    finally:
        _current.remove(repositories)
