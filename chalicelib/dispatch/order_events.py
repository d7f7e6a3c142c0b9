"""Fan-out of one order event: plan what each integrator should hear, then run those deliveries side by side, and
settle the event on the order once they have all run (one write: `dispatched`, or the outbox mark cleared)."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

from chalicelib import queue
from chalicelib.db.repository import repo
from chalicelib.dispatch import outcomes
from chalicelib.dispatch.delivery import Attempted, deliver, supersede
from chalicelib.dispatch.planner import drops_unsent_create, own_state, plan
from chalicelib.domain.clock import parse_iso, utcnow
from chalicelib.domain.delivery import DeliveryState, webhook_id
from chalicelib.domain.events import EventType, OrderEvent
from chalicelib.domain.integrator import Integrator
from chalicelib.domain.order import Order
from chalicelib.integrators.cache import load_integrators
from chalicelib.messages import DeliveryJob
from chalicelib.notifications import publisher
from chalicelib.observability import count, logger

# A create's write comes at most the API function's timeout (29 s) after its send: an event older than this whose
# order is missing belongs to a create that failed (tests/functional/test_create_send_first.py pins the timeout).
CREATE_WRITE_WINDOW_SECONDS = 30

# Lives as long as the Lambda container: its threads (and the clients they use) are reused across invocations.
_deliveries = ThreadPoolExecutor(max_workers=32, thread_name_prefix="delivery")


def handle_order_event(event: OrderEvent, integrators: list[Integrator] | None = None) -> None:
    """One read of the order and one Query of its state rows serve every delivery: each integrator's delivery is
    claimed on the row as read here, with the order as read here (re-read only on a conflict)."""
    order = repo().orders.get(event.order_id)
    if order is None:
        _await_create(event)
        return
    jobs: list[tuple[DeliveryJob, Integrator, DeliveryState | None]] = []
    states = {state.integrator: state for state in repo().deliveries.list_states(order.id)}  # one Query for all
    for integrator in integrators if integrators is not None else load_integrators():
        state = states.get(integrator.name)
        own = own_state(integrator, state)
        if own is not None and drops_unsent_create(event, own):
            supersede(own, "order cancelled before this integrator received it")
            continue
        chosen = plan(event, order, integrator, state)
        if chosen is None:
            continue
        version = 1 if chosen == EventType.CREATED else event.version
        job = DeliveryJob(
            order_id=order.id,
            integrator=integrator.name,
            event=chosen,
            version=version,
            webhook_id=webhook_id(order.id, chosen, version, integrator.name),
            correlation_id=event.correlation_id,
            raised_at=event.occurred_at,
            registration_id=integrator.registration_id,
        )
        jobs.append((job, integrator, state))  # an earlier registration's row: the claim starts it afresh
    futures = [  # in this invocation's context (see claims): one copy each, a Context runs in one thread at a time
        _deliveries.submit(contextvars.copy_context().run, deliver, job, integrator, state, order)
        for job, integrator, state in jobs
    ]
    errors = [error for error in (f.exception() for f in futures) if error is not None]
    attempted = [f.result() for f in futures if f.exception() is None]
    _settle(event, order, attempted, states)
    if event.type is EventType.CANCELLED:
        publisher.notify(order, "order.cancelled", "Your order was cancelled.", key=f"v{event.version}")
    if errors:
        raise errors[0]


def _await_create(event: OrderEvent) -> None:
    """The order of an event that came before it. A create sends its event before it writes the order
    (`orders/service.py` `_send_then_write`), so the dispatcher may read before the write lands. While the create
    could still be writing (`CREATE_WRITE_WINDOW_SECONDS` after the event) the event goes back on the queue with a
    delay (1 s, then its age): the queue waits, not a Lambda thread. Later than that the create failed after
    sending (its client got no order and retries): the event is dropped, as is any other event of a missing
    order."""
    if event.type is EventType.CREATED:
        age = (utcnow() - parse_iso(event.occurred_at)).total_seconds()
        if age < CREATE_WRITE_WINDOW_SECONDS:
            queue.send(event, delay_seconds=max(1.0, age), correlation_id=event.correlation_id)
            logger.info("order event came before its order; sent again", extra={"order_id": event.order_id})
            count("CreateEventEarly")
            return
    logger.warning("order event for a missing order; dropped", extra={"order_id": event.order_id})
    count("OrderEventOrphaned")


def _settle(event: OrderEvent, order: Order, attempted: list[Attempted], states: dict[str, DeliveryState]) -> None:
    """The event is in the dispatcher's hands: one write moves the order to `dispatched` if an integrator has it
    now (also when an earlier, interrupted run of this event delivered it) and clears the event's outbox mark
    (a create leaves it to this write); with nobody having it yet, the mark alone is cleared."""
    holders = [a.job.integrator for a in attempted if a.delivered_created]
    holders += [state.integrator for state in states.values() if state.has_order]
    holder = holders[0] if holders else None
    if holder is not None:
        outcomes.on_first_delivery(order, holder, event_id=event.event_id)
    elif order.outbox is not None and order.outbox.event_id == event.event_id:
        repo().orders.clear_outbox(order.id, event.event_id)
