"""Count every AWS request this process sends, by service and operation, with a botocore event hook.

Every botocore client (boto3's, pynamodb's own session, Powertools') is made by `botocore.client.ClientCreator`;
`install()` wraps it once so each new client gets a `before-send` handler registered *first* (ahead of moto's
in-process stub, which answers from `before-send` and would otherwise hide the request). `before-send` fires once
per HTTP attempt, so retries count, as AWS bills them.

    from bench.aws_requests import recording
    with recording() as log:
        ...                      # anything that talks to AWS (moto server, mock_aws, or the real thing)
    log.counts()                 # Counter({("dynamodb", "GetItem"): 3, ...})

Clients built before `install()` are not hooked: install before the code under test makes its clients, or drop
the service's cached clients afterwards (tools/caches.py `reset_all`). `recording()` installs on entry.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_lock = threading.Lock()
_active: list[RequestLog] = []
_installed = False


@dataclass(frozen=True)
class AwsRequest:
    """One HTTP request to AWS. `target` is the table, queue, topic or secret when the body names one; `key` is
    the partition key value of a DynamoDB item request (Powertools idempotency keys start with their prefix)."""

    service: str
    operation: str
    target: str = ""
    key: str = ""
    thread: str = ""

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


@dataclass
class RequestLog:
    requests: list[AwsRequest] = field(default_factory=list)
    # (boto3 service name, operation, API parameters) per API call, for replaying the same calls with bare boto3
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # service name of every botocore client built meanwhile (each costs tens of ms on a cold start)
    clients: list[str] = field(default_factory=list)
    # DynamoDB items read (ScannedCount of a Query or Scan, 1 per GetItem that found one): what read units bill
    items_read: int = 0

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((r.service, r.operation) for r in self.requests)

    def by_service(self) -> Counter[str]:
        return Counter(r.service for r in self.requests)

    @property
    def total(self) -> int:
        return len(self.requests)

    def summary(self) -> str:
        """`dynamodb 5 (GetItem 3, PutItem 2), sqs 1 (SendMessage 1)`: services and operations, most first."""
        parts = []
        for service, total in sorted(self.by_service().items(), key=lambda item: (-item[1], item[0])):
            ops = Counter(r.operation for r in self.requests if r.service == service)
            inner = ", ".join(f"{op} {n}" for op, n in sorted(ops.items(), key=lambda item: (-item[1], item[0])))
            parts.append(f"{service} {total} ({inner})")
        return ", ".join(parts) or "none"


def _field(body: dict[str, Any], *names: str) -> str:
    for name in names:
        value = body.get(name)
        if isinstance(value, str):
            return value
    return ""


def _describe(event_name: str, request: Any) -> AwsRequest:
    # event_name is "before-send.<service-id>.<Operation>"
    _, _, rest = event_name.partition(".")
    service, _, operation = rest.partition(".")
    target = key = ""
    raw = getattr(request, "body", None)
    if isinstance(raw, bytes | bytearray) and raw[:1] == b"{":
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        target = _field(body, "TableName", "QueueUrl", "SecretId", "TopicArn")
        item = body.get("Key") or body.get("Item") or {}
        if isinstance(item, dict):
            first = next(iter(item.values()), None)
            if isinstance(first, dict):
                key = str(next(iter(first.values()), ""))
    return AwsRequest(service, operation, target, key, threading.current_thread().name)


def _on_send(event_name: str = "", request: Any = None, **_: Any) -> None:
    with _lock:
        if not _active:
            return
        found = _describe(event_name, request)
        for log in _active:
            log.requests.append(found)


def _on_params(params: Any = None, model: Any = None, **_: Any) -> None:
    with _lock:
        if not _active or model is None:
            return
        found = (model.service_model.service_name, model.name, dict(params or {}))
        for log in _active:
            log.calls.append(found)


def _items(parsed: Any) -> int:
    if not isinstance(parsed, dict):
        return 0
    if "ScannedCount" in parsed:
        return int(parsed["ScannedCount"])
    if "Item" in parsed:
        return 1
    if "Responses" in parsed and isinstance(parsed["Responses"], dict):
        return sum(len(v) for v in parsed["Responses"].values() if isinstance(v, list))
    return 0


def _on_result(parsed: Any = None, model: Any = None, **_: Any) -> None:
    if model is None or model.service_model.service_name != "dynamodb":
        return
    found = _items(parsed)
    with _lock:
        for log in _active:
            log.items_read += found


def install() -> None:
    """Hook every botocore client created from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from botocore.client import ClientCreator

        original = ClientCreator.create_client

        def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
            made = original(self, *args, **kwargs)
            with _lock:
                for log in _active:
                    log.clients.append(made.meta.service_model.service_name)
            made.meta.events.register_first("before-send", _on_send)
            made.meta.events.register_first("provide-client-params", _on_params)
            made.meta.events.register("after-call", _on_result)
            return made

        ClientCreator.create_client = create_client  # type: ignore[method-assign]
        _installed = True


@contextmanager
def recording() -> Iterator[RequestLog]:
    """Record every AWS request sent while the block runs (from any thread of this process)."""
    install()
    log = RequestLog()
    with _lock:
        _active.append(log)
    try:
        yield log
    finally:
        with _lock:
            _active.remove(log)
