"""Deliveries held back while an integrator cannot take them (circuit open, or disabled), and their release.

A waiting delivery costs nothing while it waits: its state row keeps the job to resume and sits in the
`by_integrator_status` index under `<integrator>#waiting`, oldest first. Nothing polls it. It is released by a
`ProbeCircuit` timer (one delayed message per circuit, not per delivery) when the cool-down ends, and by a
`DrainWaiting` message when the circuit closes or the integrator is enabled again; the outbox sweeper re-sends
that message if it was ever lost.
"""

from __future__ import annotations

from datetime import timedelta

from chalicelib import queue
from chalicelib.db.concurrency import StaleWrite
from chalicelib.db.repository import repo
from chalicelib.dispatch import circuit
from chalicelib.dispatch import circuit_policy as policy
from chalicelib.dispatch.circuit_policy import Admission
from chalicelib.domain import clock
from chalicelib.domain.circuit import CircuitState
from chalicelib.integrators.cache import load_integrator
from chalicelib.messages import DeliveryJob, DrainWaiting, ProbeCircuit
from chalicelib.observability import count, logger

DRAIN_PAGE = 100
SWEEP_GRACE_SECONDS = 60
MAX_DELAY_SECONDS = 900


def park(job: DeliveryJob, *, until: str | None, reason: str) -> None:
    """Hold `job` back without spending an attempt (one conditional write; on a row an earlier registration of
    the name left, a second one first starts the row afresh for this one)."""
    job_data = job.model_dump(mode="json")
    parked = repo().deliveries.park(job.order_id, job.integrator, job_data, until=until, reason=reason, now=clock.iso())
    if not parked and _took_over(job):
        parked = repo().deliveries.park(
            job.order_id, job.integrator, job_data, until=until, reason=reason, now=clock.iso()
        )
    if parked:
        count("DeliveryWaiting")
        logger.info(
            "delivery waiting",
            extra={"order_id": job.order_id, "integrator": job.integrator, "reason": reason, "until": until},
        )


def _took_over(job: DeliveryJob) -> bool:
    """Whether the row belonged to an earlier registration and now starts afresh for `job`'s."""
    from chalicelib.dispatch.claims import fresh_row

    state = repo().deliveries.get_state(job.order_id, job.integrator)
    if state is None or state.belongs_to(job.registration_id):
        return False
    try:
        repo().deliveries.put_state(fresh_row(job), state.revision)
    except StaleWrite:
        return False  # the row moved meanwhile: whoever moved it decides
    return True


def drain(message: DrainWaiting) -> None:
    """Resume the integrator's waiting deliveries, oldest first, paced by its rate limit, each once."""
    integrator = load_integrator(message.integrator)
    if integrator is None or not integrator.enabled:
        return
    if circuit.current(message.integrator, max_age=0).state is not CircuitState.CLOSED:
        return  # the next probe decides
    waiting = repo().deliveries.oldest_waiting(message.integrator, DRAIN_PAGE, after=message.after)
    rate = integrator.max_requests_per_second
    resumed = 0
    for position, state in enumerate(waiting):
        if state.waiting_job is None:
            continue
        job = DeliveryJob.model_validate(state.waiting_job)
        delay = min(MAX_DELAY_SECONDS, position / rate) if rate else 0
        # The row stays `waiting` until its job claims it: should the circuit open again first, the job is simply
        # parked again. A job sent twice (two drains) runs once: the state row records the run it claimed.
        queue.send(job, delay_seconds=delay, correlation_id=message.correlation_id or job.correlation_id)
        resumed += 1
    if resumed:
        logger.info("waiting deliveries resumed", extra={"integrator": message.integrator, "count": resumed})
        count("DeliveriesResumed", resumed)
    if len(waiting) == DRAIN_PAGE:
        following = message.model_copy(update={"after": waiting[-1].updated_at})
        queue.send(following, delay_seconds=min(MAX_DELAY_SECONDS, DRAIN_PAGE / rate) if rate else 0)


def probe(message: ProbeCircuit) -> None:
    """The cool-down is over: queue the longest-waiting delivery again; admitted first, it becomes the probe."""
    stored = circuit.current(message.integrator, max_age=0)
    if stored.state is CircuitState.CLOSED:
        return
    integrator = load_integrator(message.integrator)
    if integrator is None or not integrator.enabled:
        return
    oldest = repo().deliveries.oldest_waiting(message.integrator, 1)
    if not oldest or oldest[0].waiting_job is None:
        logger.info(
            "circuit open with nothing waiting: the next delivery probes", extra={"integrator": integrator.name}
        )
        return
    queue.send(DeliveryJob.model_validate(oldest[0].waiting_job), correlation_id=message.correlation_id)


def sweep() -> int:
    """Safety net, run with the outbox sweeper every minute: re-send a lost `DrainWaiting` or `ProbeCircuit`.
    Costs one circuit read and one one-item index Query per integrator, whatever waits."""
    from chalicelib.db import integrators as configs  # configuration only: the sweeper needs no secrets

    now = clock.utcnow()
    sent = 0
    for integrator in configs.list_all():
        if not integrator.enabled:
            continue
        stored = circuit.current(integrator.name, max_age=0)
        if stored.state is CircuitState.CLOSED:
            if repo().deliveries.oldest_waiting(integrator.name, 1):
                queue.send(DrainWaiting(integrator=integrator.name))
                sent += 1
        elif policy.admit(stored, now - timedelta(seconds=SWEEP_GRACE_SECONDS)) is not Admission.WAIT:
            queue.send(ProbeCircuit(integrator=integrator.name))  # the probe is overdue: its timer was lost
            sent += 1
    return sent
