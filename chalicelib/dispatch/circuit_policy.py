"""The circuit's rules as pure functions: may a delivery be sent now, and what a success or a retryable failure
does to the circuit. No I/O and no clock of its own (`now` is passed in), so every rule is unit-tested."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.domain.circuit import Circuit, CircuitState
from chalicelib.domain.clock import iso, parse_iso

MAX_COOLDOWN_SECONDS = 900.0
# A probe whose dispatcher died never reports back: after this long another delivery may probe.
PROBE_LEASE_SECONDS = 120.0
Decision = Callable[[Circuit], Circuit | None]


@dataclass(frozen=True)
class CircuitSettings:
    failure_threshold: int = 5
    cooldown_seconds: float = 30.0
    disable_after_seconds: float = 86400.0


class Admission(StrEnum):
    SEND = "send"  # circuit closed: send as usual
    PROBE = "probe"  # the cool-down is over: this delivery may become the probe
    WAIT = "wait"  # open, or a probe is in flight: wait without spending an attempt


def admit(circuit: Circuit, now: datetime, webhook_id: str | None = None) -> Admission:
    if circuit.state is CircuitState.CLOSED:
        return Admission.SEND
    if circuit.state is CircuitState.HALF_OPEN and webhook_id is not None and circuit.probe_webhook_id == webhook_id:
        return Admission.PROBE  # the probe itself, back after waiting for a rate-limit slot
    if circuit.state is CircuitState.OPEN:
        due = circuit.next_probe_at is None or parse_iso(circuit.next_probe_at) <= now
        return Admission.PROBE if due else Admission.WAIT
    started = parse_iso(circuit.probe_started_at) if circuit.probe_started_at else now
    return Admission.PROBE if now - started >= timedelta(seconds=PROBE_LEASE_SECONDS) else Admission.WAIT


def start_probe(circuit: Circuit, webhook_id: str, now: datetime) -> Circuit:
    return circuit.model_copy(
        update={"state": CircuitState.HALF_OPEN, "probe_webhook_id": webhook_id, "probe_started_at": iso(now)}
    )


def after_failure(
    circuit: Circuit, error: str, now: datetime, settings: CircuitSettings, *, probe: str | None = None
) -> Circuit | None:
    """A retryable failure: counted while closed, the circuit opens at the threshold; the failed probe `probe`
    reopens it with the cool-down doubled (at most MAX_COOLDOWN_SECONDS). None: nothing to change (a call that
    started before the circuit opened, reporting late)."""
    noted = {"last_error": error[:500], "last_error_at": iso(now)}
    failures = circuit.consecutive_failures + 1
    if circuit.state is CircuitState.CLOSED:
        if failures < settings.failure_threshold:
            return circuit.model_copy(update={"consecutive_failures": failures, **noted})
        return _open(circuit, failures, settings.cooldown_seconds, iso(now), now, noted)
    if circuit.state is CircuitState.HALF_OPEN and probe is not None and circuit.probe_webhook_id == probe:
        cooldown = min(max(circuit.cooldown_seconds, settings.cooldown_seconds) * 2, MAX_COOLDOWN_SECONDS)
        return _open(circuit, failures, cooldown, circuit.opened_at or iso(now), now, noted)
    return None


def _open(
    circuit: Circuit, failures: int, cooldown: float, opened_at: str, now: datetime, noted: dict[str, str]
) -> Circuit:
    return circuit.model_copy(
        update={
            "state": CircuitState.OPEN,
            "consecutive_failures": failures,
            "cooldown_seconds": cooldown,
            "opened_at": opened_at,
            "next_probe_at": iso(now + timedelta(seconds=cooldown)),
            "probe_webhook_id": None,
            "probe_started_at": None,
            **noted,
        }
    )


def release_probe(circuit: Circuit, webhook_id: str, now: datetime) -> Circuit | None:
    """The probe `webhook_id` ended without reaching the integrator (cancelled, already delivered, expired):
    open again, due at once, so another waiting delivery probes. None: it is not the probe (any more)."""
    if circuit.state is not CircuitState.HALF_OPEN or circuit.probe_webhook_id != webhook_id:
        return None
    return circuit.model_copy(
        update={
            "state": CircuitState.OPEN,
            "next_probe_at": iso(now),
            "probe_webhook_id": None,
            "probe_started_at": None,
        }
    )


def after_success(circuit: Circuit, *, probe: str | None = None) -> Circuit | None:
    """An answer from the integrator (2xx, or a 4xx it means) shows it is up. Closed: forget earlier failures.
    The probe's success closes the circuit. None: nothing to change (healthy, or a straggler while open: only
    the probe decides)."""
    if circuit.state is CircuitState.CLOSED:
        return circuit.model_copy(update={"consecutive_failures": 0}) if circuit.consecutive_failures else None
    if circuit.state is CircuitState.HALF_OPEN and probe is not None and circuit.probe_webhook_id == probe:
        return circuit.model_copy(
            update={
                "state": CircuitState.CLOSED,
                "consecutive_failures": 0,
                "cooldown_seconds": 0.0,
                "opened_at": None,
                "next_probe_at": None,
                "probe_webhook_id": None,
                "probe_started_at": None,
            }
        )
    return None


def open_too_long(circuit: Circuit, now: datetime, settings: CircuitSettings) -> bool:
    if circuit.state is CircuitState.CLOSED or circuit.opened_at is None:
        return False
    return now - parse_iso(circuit.opened_at) >= timedelta(seconds=settings.disable_after_seconds)
