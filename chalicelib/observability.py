"""Logger and Metrics, made once, on first use. Tracer is left out on purpose: its import builds a botocore session
(+300 ms on every cold start, measured in bench/); Lambda active tracing (`xray: true`) still traces calls.

Every function imports this module (the route tables log), but Powertools is imported only when something is
logged or counted: the authorizer's cold start, which logs only a refusal, does not pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

SERVICE = "order-relay"
T = TypeVar("T")


class _OnFirstUse(Generic[T]):
    """Stands for an object built on first attribute access (then every access goes to it)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._made: T | None = None
        self._lock = threading.Lock()

    def made(self) -> T | None:
        """The object if it was built; None otherwise (nothing to flush, nothing to reset)."""
        return self._made

    def get(self) -> T:
        if self._made is None:
            with self._lock:  # the dispatcher's threads may log at once on a cold start
                if self._made is None:
                    self._made = self._build()
        return self._made

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def _logger() -> Logger:
    from aws_lambda_powertools import Logger

    return Logger(service=SERVICE)


def _metrics() -> Metrics:
    from aws_lambda_powertools import Metrics

    return Metrics(namespace="OrderRelay", service=SERVICE)


_logger_holder: _OnFirstUse[Logger] = _OnFirstUse(_logger)
_metrics_holder: _OnFirstUse[Metrics] = _OnFirstUse(_metrics)
# Typed as what they stand for: callers use them as the Powertools objects they become.
logger = cast("Logger", _logger_holder)
metrics = cast("Metrics", _metrics_holder)


def count(name: str, value: float = 1) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    """Write the EMF line for this invocation (empty invocations print nothing, and build nothing)."""
    made = _metrics_holder.made()
    if made is not None and made.metric_set:
        made.flush_metrics()
