"""What a customer's tracking page may see of an order: a model of its own that lists only customer-facing
fields, so a field added to the order later never reaches the public page by accident.

Never: integrator names, errors, delivery details, tokens, other orders, the customer's contact details or the
shop's private fields (id, e-mail, location). The timeline keeps status changes only, in the customer's words;
messages written by partners or operators are left out (they may name a partner or an internal reason).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus, is_end

# (headline, sentence) per status, as a customer would say it.
WORDS: dict[str, tuple[str, str]] = {
    OrderStatus.PENDING: ("Order received", "We have your order and are sending it to the shop."),
    OrderStatus.DISPATCHED: ("Sent to the shop", "The shop has your order."),
    OrderStatus.ACCEPTED: ("Accepted", "The shop accepted your order."),
    OrderStatus.PREPARING: ("Being prepared", "Your order is being prepared."),
    OrderStatus.READY: ("Ready", "Your order is ready."),
    OrderStatus.PICKED_UP: ("On its way", "Your order is on its way."),
    OrderStatus.DELIVERED: ("Delivered", "Your order was delivered. Enjoy!"),
    OrderStatus.REJECTED: ("Not accepted", "The shop could not take your order."),
    OrderStatus.CANCELLED: ("Cancelled", "Your order was cancelled."),
    OrderStatus.FAILED: ("Could not be placed", "Your order could not be placed. Please contact the shop."),
}
# The steps a page draws as progress, in order.
STEPS = [
    OrderStatus.PENDING,
    OrderStatus.ACCEPTED,
    OrderStatus.PREPARING,
    OrderStatus.PICKED_UP,
    OrderStatus.DELIVERED,
]


class Shop(BaseModel):
    name: str
    phone: str | None = None


class Step(BaseModel):
    status: str
    label: str
    at: str


class Item(BaseModel):
    name: str
    quantity: int


class TrackingView(BaseModel):
    """The public tracking document; `version` is the sequence number of the live frames."""

    reference: str
    status: str
    label: str
    description: str
    ended: bool
    version: int
    placed_at: str
    updated_at: str
    shop: Shop
    eta: str | None = None
    note: str | None = None
    items: list[Item]
    timeline: list[Step]
    steps: list[str]


class Live(BaseModel):
    url: str | None = None  # the WebSocket API: connect with `?token=<the link's token>`


class TrackingDocument(BaseModel):
    """`GET /api/v1/track` (header `X-Tracking-Token`): the view, where to follow it live, the link's hard expiry."""

    order: TrackingView
    live: Live
    link_expires_at: int


class LinkIssued(BaseModel):
    """`POST /api/v1/orders/{id}/tracking-links`: every earlier link is refused from now on; this one works."""

    order_id: str
    tracking_url: str
    link_expires_at: int


def tracking_view(order: Order, eta: str | None = None) -> TrackingView:
    timeline: list[Step] = []
    for entry in order.timeline:
        if entry.event is not None or (timeline and timeline[-1].status == entry.status):
            continue  # a recorded fact (an overdue acknowledgement) is not the customer's business
        timeline.append(Step(status=entry.status, label=WORDS[entry.status][0], at=entry.at))
    label, description = WORDS[order.status]
    return TrackingView(
        reference=order.id,
        status=order.status,
        label=label,
        description=description,
        ended=is_end(order.status),
        version=order.version,
        placed_at=order.created_at,
        updated_at=order.updated_at,
        shop=Shop(name=str(order.seller.get("name") or "the shop"), phone=order.seller.get("phone") or None),
        eta=None if is_end(order.status) else eta,
        note=order.details.get("user_note") or None,
        items=[Item(name=item["name"], quantity=item["quantity"]) for item in order.details.get("items", [])],
        timeline=timeline,
        steps=[str(step) for step in STEPS],
    )


def ended_at(order: Order) -> str | None:
    """When the order reached its end state (its links expire a set time after), None while it has not."""
    if not is_end(order.status):
        return None
    return next((e.at for e in reversed(order.timeline) if e.status == order.status and e.event is None), None) or (
        order.updated_at
    )


def latest_eta(states: list[Any]) -> str | None:
    """The newest ETA any partner reported for the order."""
    reported = [(s.remote_status_at or "", s.remote_eta) for s in states if getattr(s, "remote_eta", None)]
    return max(reported)[1] if reported else None
