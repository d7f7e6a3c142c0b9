"""boto3 clients made on first use and cached per process, so importing a module costs nothing and
tests (moto) can swap everything with `reset_clients()`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """One client per service and process. Locked: the dispatcher's threads would otherwise all build their own
    on a cold start (botocore clients are thread-safe once built, not cheap to build)."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            import boto3  # deferred: ~300 ms of botocore that the authorizer and docs routes never need

            _clients[service] = boto3.session.Session().client(  # type: ignore[call-overload]
                service, region_name=get_settings().region
            )
        return _clients[service]


def sqs() -> SQSClient:
    found: SQSClient = client("sqs")
    return found


def sns() -> SNSClient:
    found: SNSClient = client("sns")
    return found


def secretsmanager() -> SecretsManagerClient:
    found: SecretsManagerClient = client("secretsmanager")
    return found


def reset_clients() -> None:
    with _lock:
        _clients.clear()
