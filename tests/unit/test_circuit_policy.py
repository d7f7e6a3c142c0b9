"""The circuit's rules without AWS: when it opens, how the probe works, how the cool-down grows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.dispatch.circuit_policy import (
    MAX_COOLDOWN_SECONDS,
    Admission,
    CircuitSettings,
    admit,
    after_failure,
    after_success,
    open_too_long,
    start_probe,
)
from chalicelib.domain.circuit import Circuit, CircuitState
from chalicelib.domain.clock import parse_iso

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CONFIG = CircuitSettings(failure_threshold=3, cooldown_seconds=30, disable_after_seconds=3600)


def failed(circuit: Circuit, times: int = 1, at: datetime = NOW) -> Circuit:
    for _ in range(times):
        changed = after_failure(circuit, "HTTP 503", at, CONFIG)
        assert changed is not None
        circuit = changed
    return circuit


def test_a_closed_circuit_sends_and_opens_at_the_threshold() -> None:
    circuit = Circuit(integrator="p")
    assert admit(circuit, NOW) is Admission.SEND
    two = failed(circuit, 2)
    assert two.state is CircuitState.CLOSED and two.consecutive_failures == 2
    opened = failed(two)
    assert opened.state is CircuitState.OPEN and opened.cooldown_seconds == 30
    assert opened.next_probe_at is not None and parse_iso(opened.next_probe_at) == NOW + timedelta(seconds=30)
    assert opened.last_error == "HTTP 503"


def test_a_success_forgets_failures_and_a_healthy_circuit_needs_no_write() -> None:
    assert after_success(Circuit(integrator="p")) is None, "healthy: nothing to write"
    reset = after_success(failed(Circuit(integrator="p"), 2))
    assert reset is not None and reset.consecutive_failures == 0 and reset.state is CircuitState.CLOSED


def test_an_open_circuit_waits_then_lets_exactly_one_probe_through() -> None:
    opened = failed(Circuit(integrator="p"), 3)
    assert admit(opened, NOW + timedelta(seconds=10)) is Admission.WAIT
    later = NOW + timedelta(seconds=31)
    assert admit(opened, later) is Admission.PROBE
    probing = start_probe(opened, "msg_probe", later)
    assert probing.state is CircuitState.HALF_OPEN
    assert admit(probing, later, "msg_other") is Admission.WAIT
    assert admit(probing, later, "msg_probe") is Admission.PROBE
    # A probe whose dispatcher died does not block the circuit for ever.
    assert admit(probing, later + timedelta(minutes=5), "msg_other") is Admission.PROBE


def test_the_probe_decides_and_a_failed_probe_doubles_the_cool_down_up_to_the_cap() -> None:
    probing = start_probe(failed(Circuit(integrator="p"), 3), "msg_probe", NOW)
    closed = after_success(probing, probe="msg_probe")
    assert closed is not None and closed.state is CircuitState.CLOSED and closed.opened_at is None
    assert after_success(probing, probe="msg_straggler") is None, "only the probe closes the circuit"
    assert after_failure(probing, "late", NOW, CONFIG, probe=None) is None, "a straggler's failure changes nothing"
    reopened = after_failure(probing, "HTTP 500", NOW, CONFIG, probe="msg_probe")
    assert reopened is not None and reopened.state is CircuitState.OPEN and reopened.cooldown_seconds == 60
    assert reopened.opened_at == probing.opened_at, "the outage's start is kept"
    circuit = reopened
    for _ in range(10):
        circuit = after_failure(start_probe(circuit, "msg_probe", NOW), "x", NOW, CONFIG, probe="msg_probe") or circuit
    assert circuit.cooldown_seconds == MAX_COOLDOWN_SECONDS


def test_open_too_long_counts_from_when_the_outage_began() -> None:
    opened = failed(Circuit(integrator="p"), 3)
    assert not open_too_long(opened, NOW + timedelta(minutes=59), CONFIG)
    assert open_too_long(opened, NOW + timedelta(hours=1), CONFIG)
    assert not open_too_long(Circuit(integrator="p"), NOW + timedelta(days=9), CONFIG)
