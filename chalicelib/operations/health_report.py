"""An integrator's health as `GET /integrators/{name}/health` answers it: its circuit, what waits for it, and
the last minutes' attempts from the per-minute counters (never from the attempt log)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.db import integrator_control as store
from chalicelib.db.repository import repo
from chalicelib.domain import clock


def _percentile(histogram: list[int], fraction: float) -> float | None:
    """The upper bound (ms) of the latency bucket holding the `fraction` quantile."""
    total = sum(histogram)
    if not total:
        return None
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= fraction * total:
            bounds = store.LATENCY_BOUNDS_MS
            return float(bounds[index]) if index < len(bounds) else float(bounds[-1] * 2)
    return None


def health(name: str, minutes: int) -> dict[str, Any]:
    now = clock.utcnow()
    circuit = store.get_circuit(name)
    counts = store.read_health(name, store.minute_of(now - timedelta(minutes=minutes - 1)), store.minute_of(now))
    attempts = counts.get("attempts", 0)
    delivered = counts.get("delivered", 0)
    histogram = [counts.get(f"l{index:02d}", 0) for index in range(len(store.LATENCY_BOUNDS_MS) + 1)]
    return {
        "integrator": name,
        "circuit": circuit.state.value,
        "consecutive_failures": circuit.consecutive_failures,
        "opened_at": circuit.opened_at,
        "next_probe_at": circuit.next_probe_at,
        "waiting": repo().deliveries.count_waiting(name),
        "last_error": circuit.last_error,
        "last_error_at": circuit.last_error_at,
        "window": {
            "minutes": minutes,
            "attempts": attempts,
            "delivered": delivered,
            "failed": attempts - delivered,
            "success_rate": round(delivered / attempts, 4) if attempts else None,
            "p50_ms": _percentile(histogram, 0.5),
            "p95_ms": _percentile(histogram, 0.95),
        },
    }
