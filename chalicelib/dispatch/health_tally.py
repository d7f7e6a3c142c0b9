"""Health counters of every attempt, summed in memory and written once per batch and integrator-minute (one
sharded DynamoDB ADD), so a busy integrator's attempts cost a fraction of a write each."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime

from chalicelib.db import integrator_control as store
from chalicelib.observability import logger

_tally: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
_lock = threading.Lock()


def note(integrator: str, moment: datetime, outcome: str, latency_ms: float) -> None:
    """Count one attempt (`outcome`: delivered, retry, failed)."""
    key = (integrator, store.minute_of(moment))
    with _lock:
        counts = _tally[key]
        counts["attempts"] += 1
        counts[outcome] += 1
        counts[f"l{store.latency_bucket(latency_ms):02d}"] += 1


def flush() -> None:
    """Write what was counted; a failed write is logged and dropped (health figures, never delivery state)."""
    with _lock:
        pending = {key: dict(counts) for key, counts in _tally.items()}
        _tally.clear()
    for (integrator, minute), counts in pending.items():
        try:
            store.add_health(integrator, minute, counts)
        except Exception:  # noqa: BLE001 - health counters must never fail a batch
            logger.warning("health counters not written", extra={"integrator": integrator}, exc_info=True)


def flush_discard() -> None:
    """Forget what was counted without writing it (tests and benchmarks pointing at a new AWS endpoint)."""
    with _lock:
        _tally.clear()
