"""The circuit breaker as the dispatcher uses it: may this delivery be sent, and what its answer does to the
integrator's shared circuit (opening it, probing, closing it, disabling the integrator after a long outage).

The stored circuit is read at most every CACHE_SECONDS per container and integrator, and written only when it
changes: a healthy integrator's deliveries cost no DynamoDB request here at all.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from chalicelib import queue
from chalicelib.db import integrator_control as store
from chalicelib.db.concurrency import retry_on_conflict
from chalicelib.db.integrator_control import CircuitChanged
from chalicelib.dispatch import circuit_policy as policy
from chalicelib.dispatch.circuit_policy import Admission, CircuitSettings
from chalicelib.domain import clock
from chalicelib.domain.circuit import Circuit, CircuitState
from chalicelib.messages import DrainWaiting, ProbeCircuit
from chalicelib.observability import count, logger
from chalicelib.settings import get_settings

CACHE_SECONDS = 5.0
_cache: dict[str, tuple[Circuit, float]] = {}
_lock = threading.Lock()


class _Gate:
    """Calls in flight from this container to one integrator. Until the integrator has answered (after a cold
    start, or after a failure) at most the remaining failure budget is in flight, so a dead integrator gets
    `threshold` calls, not a whole batch at once; once it answers, nothing is held back."""

    def __init__(self) -> None:
        self.proven = False
        self.in_flight = 0
        self.changed = threading.Condition()


_gates: dict[str, _Gate] = {}


def _gate(name: str) -> _Gate:
    with _lock:
        return _gates.setdefault(name, _Gate())


@contextlib.contextmanager
def in_flight(name: str) -> Iterator[None]:
    """Hold a call slot for `name` for the duration of one delivery (see _Gate)."""
    gate = _gate(name)
    with gate.changed:
        while not gate.proven and gate.in_flight >= _budget(name):
            gate.changed.wait(timeout=1.0)
        gate.in_flight += 1
    try:
        yield
    finally:
        with gate.changed:
            gate.in_flight -= 1
            gate.changed.notify_all()


def _budget(name: str) -> int:
    with _lock:
        cached = _cache.get(name)
    failures = cached[0].consecutive_failures if cached else 0
    return max(1, settings().failure_threshold - failures)


def _prove(name: str, proven: bool) -> None:
    gate = _gate(name)
    with gate.changed:
        gate.proven = proven
        gate.changed.notify_all()


def settings() -> CircuitSettings:
    config = get_settings()
    return CircuitSettings(
        failure_threshold=config.circuit_failure_threshold,
        cooldown_seconds=config.circuit_cooldown_seconds,
        disable_after_seconds=config.circuit_disable_after_seconds,
    )


def _remember(circuit: Circuit) -> Circuit:
    with _lock:
        _cache[circuit.integrator] = (circuit, time.monotonic())
    return circuit


def current(name: str, *, max_age: float = CACHE_SECONDS) -> Circuit:
    with _lock:
        cached = _cache.get(name)
    if cached is not None and time.monotonic() - cached[1] < max_age:
        return cached[0]
    return _remember(store.get_circuit(name))


def forget() -> None:
    with _lock:
        _cache.clear()
        _gates.clear()


def admit(name: str, webhook_id: str) -> Admission:
    """SEND, PROBE (this delivery won the right to probe: the circuit is now half-open) or WAIT."""
    now = clock.utcnow()
    circuit = current(name)
    decision = policy.admit(circuit, now, webhook_id)
    if decision is Admission.WAIT and circuit.state is not CircuitState.CLOSED:
        circuit = current(name, max_age=1.0)  # before holding a delivery back, make sure the circuit is still open
        decision = policy.admit(circuit, now, webhook_id)
    if decision is not Admission.PROBE or circuit.probe_webhook_id == webhook_id:
        return decision
    try:
        _remember(store.save_circuit(policy.start_probe(circuit, webhook_id, now)))
    except CircuitChanged as exc:
        _remember(exc.current)
        return Admission.SEND if policy.admit(exc.current, now) is Admission.SEND else Admission.WAIT
    logger.info("circuit half-open: probing", extra={"integrator": name, "webhook_id": webhook_id})
    return Admission.PROBE


def record_answer(name: str, *, probe: str | None) -> None:
    """The integrator answered (2xx, or a 4xx that retrying cannot change): it is up."""
    _prove(name, True)
    circuit = current(name)
    if circuit.state is CircuitState.CLOSED and not circuit.consecutive_failures:
        return  # the healthy path: nothing to write
    changed = _change(name, circuit, lambda c: policy.after_success(c, probe=probe))
    if changed is not None and circuit.state is not CircuitState.CLOSED and changed.state is CircuitState.CLOSED:
        logger.info("circuit closed: the probe got through; resuming waiting deliveries", extra={"integrator": name})
        count("CircuitClosed")
        queue.send(DrainWaiting(integrator=name))


def release_probe(name: str, webhook_id: str) -> None:
    """The probe never reached the integrator: hand the probe to the next waiting delivery now."""
    now = clock.utcnow()
    changed = _change(name, current(name, max_age=0), lambda c: policy.release_probe(c, webhook_id, now))
    if changed is not None:
        logger.info("probe released: it never reached the integrator", extra={"integrator": name})
        queue.send(ProbeCircuit(integrator=name))


def record_failure(name: str, error: str, *, probe: str | None) -> Circuit:
    """A retryable failure. Returns the circuit as it now stands."""
    _prove(name, False)
    config = settings()
    now = clock.utcnow()
    before = current(name)
    changed = _change(name, before, lambda c: policy.after_failure(c, error, now, config, probe=probe))
    if changed is None:
        return current(name)
    if changed.state is CircuitState.OPEN and changed.next_probe_at != before.next_probe_at:
        reopened = probe is not None
        logger.warning(
            "circuit reopened: the probe failed" if reopened else "circuit opened",
            extra={
                "integrator": name,
                "consecutive_failures": changed.consecutive_failures,
                "cooldown_seconds": changed.cooldown_seconds,
                "next_probe_at": changed.next_probe_at,
                "error": error[:200],
            },
        )
        count("CircuitReopened" if reopened else "CircuitOpened")
        queue.send(ProbeCircuit(integrator=name), delay_seconds=changed.cooldown_seconds)
        if policy.open_too_long(changed, now, config):
            from chalicelib.dispatch.outcomes import disable_after_outage

            disable_after_outage(name, changed)
    return changed


def _change(name: str, circuit: Circuit, decide: policy.Decision) -> Circuit | None:
    """Apply `decide` to the circuit and store the result, re-deciding on the stored circuit after a conflict (the
    refused write carries it: no re-read)."""
    latest = [circuit]

    def step() -> Circuit | None:
        wanted = decide(latest[-1])
        if wanted is None:
            return None
        try:
            return _remember(store.save_circuit(wanted))
        except CircuitChanged as exc:
            latest.append(_remember(exc.current))
            raise

    try:
        return retry_on_conflict(step)
    except CircuitChanged:
        return None  # the circuit keeps changing under us: others are recording the same news
