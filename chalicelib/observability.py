"""Logger and Metrics, made once. Tracer is left out on purpose: its import builds a botocore session
(+300 ms on every cold start, measured in bench/); Lambda active tracing (`xray: true`) still traces calls."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "order-relay"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="OrderRelay", service=SERVICE)


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    """Write the EMF line for this invocation (empty invocations print nothing)."""
    if metrics.metric_set:
        metrics.flush_metrics()
