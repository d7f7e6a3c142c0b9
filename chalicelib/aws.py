"""boto3 clients made on first use and cached per process, so importing a module costs nothing and
tests (moto) can swap everything with `reset_clients()`.

One botocore session and one client per service for the whole process: building a client loads its service
model from disk (tens of ms on a cold start), and each new session loads the shared endpoint data again. DynamoDB
in particular has one client, shared by the pynamodb models (chalicelib/db/records.py), Powertools Idempotency
and the low-level counters, where pynamodb alone would build one per model.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from botocore.config import Config
    from botocore.session import Session
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


_clients: dict[str, Any] = {}
_session: Session | None = None
_lock = threading.Lock()
_secrets: dict[str, tuple[float, str]] = {}  # name -> (read at, monotonic seconds; text)


def _config(service: str) -> Config | None:
    """DynamoDB's client as pynamodb configures its own (its default timeouts and retries), with a pool big enough
    for the dispatcher's threads (10 records, each with its deliveries), which all share it."""
    if service != "dynamodb":
        return None
    from botocore.config import Config

    return Config(
        connect_timeout=15,
        read_timeout=30,
        retries={"total_max_attempts": 4, "mode": "standard"},
        max_pool_connections=64,
    )


def client(service: str) -> Any:
    """One client per service and process. Locked: the dispatcher's threads would otherwise all build their own
    on a cold start (botocore clients are thread-safe once built, not cheap to build)."""
    found = _clients.get(service)
    if found is not None:
        return found
    global _session
    with _lock:
        if service not in _clients:
            if _session is None:
                # Deferred: ~300 ms of botocore that the docs routes never need. botocore's own session, as pynamodb
                # uses: boto3 would add only resources, and its import (s3transfer, ...) to every cold start.
                from botocore.session import get_session

                _session = get_session()
            _clients[service] = _session.create_client(
                service, region_name=get_settings().region, config=_config(service)
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


def secret_text(name: str, *, max_age: float, fresh: bool = False) -> str:
    """A secret's current value, cached per process for `max_age` seconds (`fresh`: read it now). Through the
    shared client: Powertools Parameters would import boto3 and build a botocore session of its own (~500 ms
    of a cold start, measured in bench/coldstart.py) for this one call."""
    cached = _secrets.get(name)
    if cached is not None and not fresh and time.monotonic() - cached[0] < max_age:
        return cached[1]
    found = secretsmanager().get_secret_value(SecretId=name)
    text = found["SecretString"] if "SecretString" in found else found["SecretBinary"].decode()
    _secrets[name] = (time.monotonic(), text)
    return text


def forget_secret(name: str | None = None) -> None:
    """Drop one cached secret (after writing it), or all of them."""
    if name is None:
        _secrets.clear()
    else:
        _secrets.pop(name, None)


def reset_clients() -> None:
    global _session
    with _lock:
        _clients.clear()
        _secrets.clear()
        _session = None
