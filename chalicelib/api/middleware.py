"""What every function invocation (route, authorizer, queue batch, schedule) does around its handler."""

from __future__ import annotations

from typing import Any

from chalicelib.observability import flush_metrics


def per_invocation(event: Any, get_response: Any) -> Any:
    """Register the Lambda context with Idempotency (a crashed call's lock expires with it), and write this
    invocation's metrics."""
    from chalicelib.idempotency import register_lambda_context

    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    register_lambda_context(context)
    try:
        return get_response(event)
    finally:
        flush_metrics()
