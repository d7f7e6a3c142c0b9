"""Status updates posted by integrators: signature first (cheapest checks first), then the webhook id against
the answers kept on the integrator's delivery row, then the state machine. Business outcomes (applied, ignored,
refused) are returned, not raised, and kept on the row, so that a repeated webhook id is answered exactly like
the first time."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from chalicelib import acknowledgement
from chalicelib.db.concurrency import retry_on_conflict
from chalicelib.db.repository import repo
from chalicelib.domain import clock
from chalicelib.domain import order_status as lifecycle
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import CALLBACK_ANSWERS_IN_WINDOW, CallbackAnswer, DeliveryState, DeliveryStatus
from chalicelib.domain.events import EventType
from chalicelib.domain.identifiers import Identifier
from chalicelib.domain.integrator import Integrator
from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus
from chalicelib.errors import DomainError, InvalidInput, MalformedRequest, PayloadTooLarge, Unauthorized
from chalicelib.integrators import cache
from chalicelib.integrators.signing import TOLERANCE_SECONDS, SignatureError, SignedRequest, read_headers, signed_by
from chalicelib.notifications import publisher
from chalicelib.observability import count, logger
from chalicelib.orders.progress import apply_status
from chalicelib.validation import MAX_BODY_BYTES, check_depth, field_errors, not_json

Text = Annotated[str, StringConstraints(max_length=1000)]
# Signed timestamps, replay windows and secret overlaps are wall-clock time (unix seconds), as the sender's are.
wall_clock = time.time
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # what a registered name can be (integrators.models.Name)
# A replay of a callback passes the signature check while its signed timestamp is within the tolerance; its
# answer is kept that long, plus a minute for the clocks of different containers.
REPLAY_WINDOW_SECONDS = TOLERANCE_SECONDS + 60
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


class TooManyCallbacks(DomainError):
    """More callbacks about one order within one replay window than its delivery row keeps answers for."""

    status_code = 429
    code = "too_many_callbacks"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def _refused(reason: str) -> Unauthorized:
    """The one answer to a callback that is not signed by a registered integrator: the same for a name that is
    registered and one that is not, so an unsigned request learns no integrator's name."""
    count("CallbackSignatureRefused")
    return Unauthorized(f"webhook signature refused: {reason}")


def authenticate(name: str, headers: dict[str, str], body: bytes) -> tuple[Integrator, SignedRequest]:
    """The integrator that signed this callback, checked in order of cost: the headers' form and freshness
    (no read), the secrets this container holds (cached), then one uncached re-read for a secret rotated
    elsewhere, at most once per name per `callback_secret_refresh_seconds`."""
    try:
        signed = read_headers(headers, now=wall_clock())
    except SignatureError as refused:
        raise _refused(refused.reason) from None
    integrator = cache.callback_integrator(name) if NAME.fullmatch(name) else None
    if integrator is not None and signed_by(_valid_secrets(integrator), signed, body):
        return integrator, signed
    fresh = cache.refresh_for_callback(name) if integrator is not None else None
    if fresh is not None and signed_by(_valid_secrets(fresh), signed, body):
        return fresh, signed
    logger.warning("callback signature refused", extra={"integrator": name, "known": integrator is not None})
    raise _refused("no_valid_signature")


def _valid_secrets(integrator: Integrator) -> list[str]:
    return integrator.callback_secrets_valid(wall_clock())


def _parse(body: bytes) -> CallbackRequest:
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
    check_depth(body)
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


def receive(name: str, headers: dict[str, str], body: bytes | str) -> tuple[int, dict[str, Any]]:
    raw = body.encode() if isinstance(body, str) else body
    integrator, signed = authenticate(name, {k.lower(): v for k, v in headers.items()}, raw)
    update = _parse(raw)
    answer, replayed = _apply(integrator, signed, update)
    return answer.status_code, {**answer.body, "duplicate": replayed}


def _fingerprint(update: CallbackRequest) -> str:
    canonical = json.dumps(update.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _answer(
    webhook_id: str, fingerprint: str, status_code: int, body: dict[str, Any], timestamp: int | None = None
) -> CallbackAnswer:
    return CallbackAnswer(
        webhook_id=webhook_id, fingerprint=fingerprint, status_code=status_code, body=body, timestamp=timestamp
    )


def _refusal(code: str, message: str, status_code: int = 409) -> tuple[int, dict[str, Any]]:
    return status_code, {"error": {"code": code, "message": message, "details": []}}


def _not_found(message: str) -> tuple[CallbackAnswer, bool]:
    """Kept nowhere (there is no delivery row to keep it on): a repeat is decided again, the same way unless the
    order has reached the integrator meanwhile."""
    return _answer("", "", *_refusal("not_found", message, 404)), False


def _apply(integrator: Integrator, signed: SignedRequest, update: CallbackRequest) -> tuple[CallbackAnswer, bool]:
    """Decide and record one callback: (its answer, whether it is a replay of an answer already given).

    Idempotent without an idempotency record: the answer is kept on the integrator's delivery row by the row's
    own conditional write (its revision), after the order was moved, so a webhook id seen before is answered from
    the row and changes nothing, and a crash before the row write is simply decided again (the order, already
    moved, does not move twice). Answers stay on the row for as long as a replay of their callback could pass the
    signature check (REPLAY_WINDOW_SECONDS). Reads the row and the order once; each is re-read only after a
    conflict. A row of an earlier registration of the integrator's name is not this integrator's: 404."""
    name, webhook_id = integrator.name, signed.webhook_id
    fingerprint = _fingerprint(update)
    moved: list[Order] = []  # the order as this callback moved it, in whichever try

    def step() -> tuple[CallbackAnswer, bool, DeliveryState | None, dict[str, Any]]:
        state = repo().deliveries.get_state(update.order_id, name)
        reached = state is not None and (state.has_order or _being_sent(state))
        if state is None or not reached or not state.belongs_to(integrator.registration_id):
            return *_not_found(f"order {update.order_id} was never delivered to {name}"), None, {}
        seen = state.callback_answer(webhook_id)
        if seen is not None:
            if seen.fingerprint != fingerprint:
                raise InvalidInput(
                    "this webhook-id was already used with a different request body",
                    [{"field": "webhook-id", "message": "use a new webhook-id for a different callback"}],
                )
            return seen, True, None, {}
        now = wall_clock()
        _check_room(state, now)
        order = repo().orders.get(update.order_id)
        if order is None:
            return *_not_found(f"order {update.order_id} not found"), None, {}
        # Any authenticated callback about the order shows the integrator has it: that answers its ack window (one
        # that comes while the order is still being sent answers the window before it opens).
        ack = acknowledgement.callback_fields(
            state, clock.utcnow(), early=not state.has_order and integrator.ack_within_seconds is not None
        )
        status_code, body, remote = _decide(state, order, name, update, moved)
        answer = _answer(webhook_id, fingerprint, status_code, body, signed.timestamp)
        answers = state.with_callback_answer(answer, now, REPLAY_WINDOW_SECONDS)
        repo().deliveries.set_fields(state, **remote, **ack, callback_answers=answers)
        return answer, False, state, ack

    answer, replayed, before, ack = retry_on_conflict(step)
    if before is not None:
        acknowledgement.after_callback(before, ack)
    return answer, replayed


def _being_sent(state: DeliveryState) -> bool:
    """The order is on its way to the integrator: its first send is claimed and not yet recorded. A partner that
    calls back while our POST is still open (or before we wrote its 2xx) has the order: its callback is applied,
    not refused as about an order it never got; the dispatcher's outcome write, conditional on the row's
    revision, re-reads the row the callback wrote and records the 2xx on top of it."""
    return state.event == EventType.CREATED and state.status == DeliveryStatus.PENDING and state.run is not None


def _check_room(state: DeliveryState, now: float) -> None:
    """Refuse a callback the row has no room to remember (429, before anything moves): past
    CALLBACK_ANSWERS_IN_WINDOW answers in one replay window, forgetting one would let its replay apply again."""
    open_answers = state.replayable_answers(now, REPLAY_WINDOW_SECONDS)
    if len(open_answers) < CALLBACK_ANSWERS_IN_WINDOW:
        return
    oldest = min(answer.timestamp or 0 for answer in open_answers)
    wait = max(1, math.ceil(oldest + REPLAY_WINDOW_SECONDS - now))
    logger.warning("callback refused: too many", extra={"order_id": state.order_id, "integrator": state.integrator})
    raise TooManyCallbacks(
        f"more than {CALLBACK_ANSWERS_IN_WINDOW} callbacks about order {state.order_id} within "
        f"{REPLAY_WINDOW_SECONDS} seconds; send this one again later",
        wait,
    )


def _decide(
    state: DeliveryState, order: Order, integrator: str, update: CallbackRequest, moved: list[Order]
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(status code, body, the report's fields for the delivery row). Moves the order when the report says so;
    `moved` remembers it across tries of the row write, so a retry answers what the first try did."""
    known = lifecycle.parse(update.status)
    if lifecycle.is_end(order.status) and not moved:
        logger.warning(
            "callback refused: order ended",
            extra={"order_id": order.id, "integrator": integrator, "status": update.status},
        )
        return *_refusal("order_finished", f"order is {order.status}; it cannot move to {update.status}"), {}
    if known is not None and known not in lifecycle.REPORTABLE:
        return *_refusal("status_not_reportable", f"{update.status} is set by order-relay, not by integrators", 422), {}
    previous = state.remote_progress or OrderStatus.DISPATCHED
    # The integrator's own progress only moves forward (unknown statuses are kept but are not progress). The same
    # report again (an integrator retrying after our 5xx) is let through unchanged: the order may not have caught
    # up with it yet, so it goes on to move the order only if it still has to.
    repeated = known is not None and previous == known
    forward = known is None or repeated or lifecycle.can_move(previous, known)
    if not forward and not moved:
        logger.warning(
            "callback refused: status regression",
            extra={"order_id": order.id, "integrator": integrator, "from": previous, "to": update.status},
        )
        return (
            *_refusal(
                "status_regression",
                f"{integrator} already reported {previous}; {update.status} is not a forward move",
            ),
            {},
        )
    remote = _remote_fields(update, known) if forward and not repeated else {}
    if known is None:
        logger.info("unknown status kept on the delivery", extra={"order_id": order.id, "status": update.status})
        reason = "unknown status: kept on the delivery, ignored for the order"
        return 202, {"order_id": order.id, "order_status": order.status, "applied": False, "reason": reason}, remote
    current = order
    if not moved:
        changed, did_move = _advance(order, integrator, known, update.message)
        current = changed or order
        if did_move and changed is not None:
            moved.append(changed)
            publisher.notify(
                changed,
                f"order.{known.value}",
                MESSAGES[known.value],
                key=known.value,
                data={"integrator": integrator, "eta": update.eta},
                winner=True,
            )
    return 200, {"order_id": order.id, "order_status": current.status, "applied": bool(moved)}, remote


def _remote_fields(update: CallbackRequest, known: OrderStatus | None) -> dict[str, Any]:
    return {
        "remote_status": update.status,
        "remote_progress": known.value if known is not None else None,
        "remote_status_at": iso(),
        "remote_message": update.message,
        "remote_eta": update.eta,
        "remote_details": update.details,
        "external_id": update.external_id,
    }


def _advance(order: Order, integrator: str, status: OrderStatus, message: str | None) -> tuple[Order | None, bool]:
    """Progress statuses move the order forwards; an end reported by one integrator (rejected, cancelled) ends
    the order only once no other integrator still carries it. Starts from the order just read (its version is the
    write's condition)."""
    if status in lifecycle.RANKS:
        return apply_status(order.id, status, source=integrator, message=message, current=order)

    def nobody_else_carries_it(current: Order) -> bool:
        states = repo().deliveries.list_states(current.id)
        return all(
            s.integrator == integrator
            or not s.has_order
            or s.remote_progress in (OrderStatus.REJECTED, OrderStatus.CANCELLED)
            for s in states
        )

    return apply_status(
        order.id, status, source=integrator, message=message, when=nobody_else_carries_it, current=order
    )
