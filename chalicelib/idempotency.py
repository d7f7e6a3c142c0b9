"""Powertools Idempotency, built lazily: its import and the persistence layer (~450 ms of import and set-up) are
paid only when a function first runs something once, not by every function that imports this module (the
middleware registers each invocation's context here), and tests can reset it with their moto endpoint."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from chalicelib.aws import client
from chalicelib.errors import InvalidInput, StillInProgress
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        IdempotentHookFunction,
    )

REPLAYED = "__idempotent_replay__"
_lock = threading.Lock()
_lambda_context: Any = None


def register_lambda_context(context: Any) -> None:
    """Called by the app middleware: with it a crashed invocation's lock expires with the Lambda timeout."""
    global _lambda_context
    _lambda_context = context


def _persistence() -> DynamoDBPersistenceLayer:
    """One layer per use: Powertools configures a layer once, with the first config it sees."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table, boto3_client=client("dynamodb"))


def _mark_replay(response: Any, _record: Any) -> Any:
    if isinstance(response, dict):
        return {**response, REPLAYED: True}
    return response


@cache
def _wrapped(
    function: Callable[..., Any], key_prefix: str, key_path: str, validate_path: str | None
) -> tuple[Callable[..., Any], IdempotencyConfig]:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

    config = IdempotencyConfig(
        event_key_jmespath=key_path,
        payload_validation_jmespath=validate_path or "",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=get_settings().idempotency_ttl_seconds,
        use_local_cache=False,
        response_hook=cast("IdempotentHookFunction", _mark_replay),
    )
    decorated = idempotent_function(
        function, data_keyword_argument="data", persistence_store=_persistence(), config=config, key_prefix=key_prefix
    )
    return decorated, config


def run_once(
    function: Callable[..., Any],
    *,
    data: dict[str, Any],
    key_prefix: str,
    key_path: str,
    validate_path: str | None = None,
) -> Any:
    """Call `function(data=data)` at most once per key; later calls get the first result (marked REPLAYED).

    Raises StillInProgress (a 409 with Retry-After) while the first call is still running and InvalidInput when
    the key is reused with another payload. An exception inside `function` forgets the key, so a retry runs again.
    """
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    with _lock:  # built once per use even when the dispatcher's threads arrive together
        decorated, config = _wrapped(function, key_prefix, key_path, validate_path)
    if _lambda_context is not None:
        config.register_lambda_context(_lambda_context)
    try:
        return decorated(data=data)
    except IdempotencyAlreadyInProgressError:
        raise StillInProgress("a request with this idempotency key is still in progress; retry shortly") from None
    except IdempotencyValidationError:
        raise InvalidInput(
            "this idempotency key was already used with a different request body",
            [{"field": "Idempotency-Key", "message": "use a new key for a different request"}],
        ) from None


def reset_idempotency() -> None:
    _wrapped.cache_clear()
