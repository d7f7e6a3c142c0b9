"""Status updates posted by integrators: signature first, then idempotency on the webhook id, then the state
machine. Business outcomes (applied, ignored, refused) are returned, not raised, so that a repeated
webhook id is answered exactly like the first time."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from chalicelib.db import deliveries as delivery_store
from chalicelib.db import orders as order_store
from chalicelib.db.concurrency import retry_on_conflict
from chalicelib.dispatch import acknowledgement
from chalicelib.domain import order_status as lifecycle
from chalicelib.domain.clock import iso
from chalicelib.domain.identifiers import Identifier
from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus
from chalicelib.errors import InvalidInput, MalformedRequest, NotFound, PayloadTooLarge, Unauthorized
from chalicelib.idempotency import REPLAYED, run_once
from chalicelib.integrators import registry
from chalicelib.integrators.signing import SignatureError, verify
from chalicelib.notifications import publisher
from chalicelib.observability import count, logger
from chalicelib.orders.progress import apply_status
from chalicelib.validation import MAX_BODY_BYTES, field_errors, not_json

Text = Annotated[str, StringConstraints(max_length=1000)]
MESSAGES = {
    "accepted": "The shop accepted your order.",
    "preparing": "Your order is being prepared.",
    "ready": "Your order is ready.",
    "picked_up": "Your order is on its way.",
    "delivered": "Your order was delivered. Enjoy!",
    "rejected": "Your order was rejected.",
    "cancelled": "Your order was cancelled.",
}


class CallbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Identifier
    status: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    external_id: Text | None = None
    eta: Text | None = None
    message: Text | None = None
    details: dict[str, Any] | None = None


def _secrets_verify(integrator: str, headers: dict[str, str], body: bytes) -> str:
    secrets = registry.callback_secrets(integrator)
    if secrets is None:
        raise NotFound(f"integrator {integrator} not found")
    try:
        return verify(secrets, headers, body)
    except SignatureError as first:
        # The secret may have been rotated since this container cached it: look once more, uncached.
        fresh = registry.callback_secrets(integrator, fresh=True) or []
        if fresh != secrets:
            try:
                return verify(fresh, headers, body)
            except SignatureError:
                pass
        logger.warning("callback signature refused", extra={"integrator": integrator, "reason": first.reason})
        count("CallbackSignatureRefused")
        raise Unauthorized(f"webhook signature refused: {first.reason}") from None


def _parse(body: bytes) -> CallbackRequest:
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body, parse_constant=not_json)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object")
    try:
        return CallbackRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("invalid CallbackRequest", field_errors(exc)) from None


def receive(integrator: str, headers: dict[str, str], body: bytes | str) -> tuple[int, dict[str, Any]]:
    raw = body.encode() if isinstance(body, str) else body
    webhook_id = _secrets_verify(integrator, {k.lower(): v for k, v in headers.items()}, raw)
    update = _parse(raw)
    data = {"integrator": integrator, "webhook_id": webhook_id, "body": update.model_dump(mode="json")}
    result = run_once(
        _apply, data=data, key_prefix="callback", key_path="[integrator, webhook_id]", validate_path="body"
    )
    replayed = bool(result.pop(REPLAYED, False))
    return int(result["status_code"]), {**result["body"], "duplicate": replayed}


def _answer(status_code: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"status_code": status_code, "body": body}


def _refuse(code: str, message: str, status_code: int = 409) -> dict[str, Any]:
    return _answer(status_code, {"error": {"code": code, "message": message, "details": []}})


def _apply(data: dict[str, Any]) -> dict[str, Any]:
    integrator, update = data["integrator"], CallbackRequest.model_validate(data["body"])
    state = delivery_store.get_state(update.order_id, integrator)
    if state is None or not state.has_order:
        return _refuse("not_found", f"order {update.order_id} was never delivered to {integrator}", 404)
    order = order_store.get(update.order_id)
    if order is None:
        return _refuse("not_found", f"order {update.order_id} not found", 404)
    # Any authenticated callback about the order shows the integrator has it: that answers its ack window.
    acknowledgement.on_callback(order.id, integrator)
    if lifecycle.is_end(order.status):
        logger.warning(
            "callback refused: order ended",
            extra={"order_id": order.id, "integrator": integrator, "status": update.status},
        )
        return _refuse("order_finished", f"order is {order.status}; it cannot move to {update.status}")
    known = lifecycle.parse(update.status)
    if known is not None and known not in lifecycle.REPORTABLE:
        return _refuse("status_not_reportable", f"{update.status} is set by order-relay, not by integrators", 422)
    stored, previous = _store_remote(order.id, integrator, update, known)
    if not stored:
        logger.warning(
            "callback refused: status regression",
            extra={"order_id": order.id, "integrator": integrator, "from": previous, "to": update.status},
        )
        return _refuse(
            "status_regression", f"{integrator} already reported {previous}; {update.status} is not a forward move"
        )
    if known is None:
        logger.info("unknown status kept on the delivery", extra={"order_id": order.id, "status": update.status})
        return _answer(
            202,
            {
                "order_id": order.id,
                "order_status": order.status,
                "applied": False,
                "reason": "unknown status: kept on the delivery, ignored for the order",
            },
        )
    changed, moved = _advance(order, integrator, known, update.message)
    current = changed or order
    if moved:
        publisher.notify(
            current,
            f"order.{known.value}",
            MESSAGES[known.value],
            key=known.value,
            data={"integrator": integrator, "eta": update.eta},
        )
    return _answer(200, {"order_id": order.id, "order_status": current.status, "applied": moved})


def _store_remote(
    order_id: str, integrator: str, update: CallbackRequest, known: OrderStatus | None
) -> tuple[bool, str]:
    """Keep the report on the integrator's delivery if it moves that integrator forward (unknown statuses are
    kept but never count as progress; a repeated report is let through unchanged). Checked and written under the
    row's revision, so two concurrent reports from one integrator cannot store a regression.
    Returns (stored, the integrator's previous progress)."""

    def step() -> tuple[bool, str]:
        state = delivery_store.get_state(order_id, integrator)
        if state is None:
            raise LookupError(f"delivery {order_id}/{integrator} vanished")
        previous = state.remote_progress or OrderStatus.DISPATCHED
        if known is not None and previous == known:
            # The same report again (an integrator retrying after our 5xx): the order may not have caught up
            # with it yet, so it goes on to `_advance`, which moves the order only if it still has to.
            return True, previous
        if known is not None and not lifecycle.can_move(previous, known):
            return False, previous
        delivery_store.set_fields(
            state,
            remote_status=update.status,
            remote_progress=known.value if known is not None else None,
            remote_status_at=iso(),
            remote_message=update.message,
            remote_eta=update.eta,
            remote_details=update.details,
            external_id=update.external_id,
        )
        return True, previous

    return retry_on_conflict(step)


def _advance(order: Order, integrator: str, status: OrderStatus, message: str | None) -> tuple[Order | None, bool]:
    """Progress statuses move the order forwards; an end reported by one integrator (rejected, cancelled) ends
    the order only once no other integrator still carries it."""
    source = integrator
    if status in lifecycle.RANKS:
        return apply_status(order.id, status, source=source, message=message)

    def nobody_else_carries_it(current: Order) -> bool:
        states = delivery_store.list_states(current.id)
        return all(
            s.integrator == integrator
            or not s.has_order
            or s.remote_progress in (OrderStatus.REJECTED, OrderStatus.CANCELLED)
            for s in states
        )

    return apply_status(order.id, status, source=source, message=message, when=nobody_else_carries_it)
