"""Fan-out of one order event: plan what each integrator should hear, then run those deliveries side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib.db import deliveries as store
from chalicelib.db import orders as order_store
from chalicelib.dispatch.delivery import deliver, supersede
from chalicelib.dispatch.planner import drops_unsent_create, plan
from chalicelib.domain.delivery import webhook_id
from chalicelib.domain.events import EventType, OrderEvent
from chalicelib.domain.integrator import Integrator
from chalicelib.integrators.registry import load_integrators
from chalicelib.messages import DeliveryJob
from chalicelib.notifications import publisher
from chalicelib.observability import logger

# Lives as long as the Lambda container: its threads (and the clients they use) are reused across invocations.
_deliveries = ThreadPoolExecutor(max_workers=32, thread_name_prefix="delivery")


def handle_order_event(event: OrderEvent, integrators: list[Integrator] | None = None) -> None:
    order = order_store.get(event.order_id)
    if order is None:
        logger.warning("order event for a missing order; dropped", extra={"order_id": event.order_id})
        return
    jobs: list[tuple[DeliveryJob, Integrator]] = []
    states = {state.integrator: state for state in store.list_states(order.id)}  # one Query for all
    for integrator in integrators if integrators is not None else load_integrators():
        state = states.get(integrator.name)
        if state is not None and drops_unsent_create(event, state):
            supersede(state, "order cancelled before this integrator received it")
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
        )
        jobs.append((job, integrator))
    futures = [_deliveries.submit(deliver, job, integrator) for job, integrator in jobs]
    errors = [error for error in (f.exception() for f in futures) if error is not None]
    if event.type is EventType.CANCELLED:
        publisher.notify(order, "order.cancelled", "Your order was cancelled.", key=f"v{event.version}")
    if errors:
        raise errors[0]
