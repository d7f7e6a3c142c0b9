"""What a list of orders asks for and what a page answers (shared by the repository, its implementations and the
use cases)."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.order import Order


@dataclass(frozen=True)
class ListFilter:
    """What `GET /orders` narrows by; a seller token always carries its own seller."""

    seller_id: str | None = None
    user_id: str | None = None
    status: str | None = None
    overdue: bool = False


@dataclass(frozen=True)
class Page:
    """One page of orders, newest first, and the opaque cursor of the next page (None: the last page). A page
    filtered by status may hold fewer than the limit while `next_cursor` is set: the page read its bounded share
    of the candidates, and the next page goes on from there. `items_read` is what the page cost in items."""

    orders: list[Order]
    next_cursor: str | None
    items_read: int
