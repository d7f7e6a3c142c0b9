"""Shared fixtures. moto is started inside fixtures (never at import) and the tables, queues and topic come
from the same description that deploys them (infra.resources), so tests and AWS cannot drift apart."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "OrderRelay",
        "POWERTOOLS_SERVICE_NAME": "order-relay",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from moto import mock_aws  # noqa: E402  (moto must patch botocore before any client exists)

from tools.caches import reset_all  # noqa: E402

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
STAGE = "test"


def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each conditional write atomically; moto checks the condition and writes in two steps,
    so two threads can both pass one condition. Serialise moto's writes, as the real service does per item.

    Reads too: moto keeps a table's items in a defaultdict, so reading a missing item adds an empty partition,
    and a transaction deep-copies the table to roll back. A read in one thread during another's transaction
    failed it with "dictionary changed size during iteration" (a crashed batch, whose messages come back only
    after the visibility timeout: a delivery sent but not recorded for minutes, seen under load)."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    reads = ("get_item", "query", "scan")  # batch and transactional reads go through get_item
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", *reads):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def serialised(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialised)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A fresh moto account with every resource provisioned and the service's environment pointing at it."""
    from infra.resources import provision

    atomic_moto_writes(monkeypatch)
    with mock_aws():
        env = provision(STAGE, region="us-east-1")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ORDER_RELAY_ADMIN_TOKEN", ADMIN_TOKEN)
        monkeypatch.setenv("ALLOW_LOOPBACK_INTEGRATORS", "true")
        # Real-time retries long enough that a drain never races one on a slow machine; a test that wants
        # retries to come back sets its own delays (`configure`) or moves the clock.
        monkeypatch.setenv("DISPATCH_RETRY_DELAYS", "30,60,120,240")
        monkeypatch.setenv("SWEEPER_GRACE_SECONDS", "0")
        reset_all()
        yield env
        reset_all()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch, aws: dict[str, str]) -> Callable[..., None]:
    """Change service settings for one test: `configure(DISPATCH_RETRY_DELAYS="0")` sets (None: removes) the
    variables and makes the service read its settings again (cached per process, as in a Lambda container)."""
    from chalicelib.settings import reset_settings

    def apply(**env: str | None) -> None:
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        reset_settings()

    return apply


@pytest.fixture
def app(aws: dict[str, str]) -> Any:
    import app as application

    return application.app


class Api:
    """`chalice.test.Client` with JSON helpers and a default token."""

    def __init__(self, client: Any, token: str) -> None:
        self._client = client
        self.token = token

    def as_(self, token: str) -> Api:
        return Api(self._client, token)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> Any:
        all_headers = {"Content-Type": "application/json"}
        effective = self.token if token is None else token
        if effective:
            all_headers["Authorization"] = f"Bearer {effective}"
        all_headers.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        return self._client.http.request(method, path, headers=all_headers, body=data)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(app: Any, tmp_path: Any) -> Iterator[Api]:
    """The test client reads a project directory whose stage sets no variables: the real .chalice/config.json
    would point the app at the dev stage's tables for the length of each request."""
    from chalice.test import Client

    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text('{"version": "2.0", "app_name": "order-relay"}')
    with Client(app, project_dir=str(tmp_path)) as client:
        yield Api(client, ADMIN_TOKEN)


@pytest.fixture
def seller_token(api: Api) -> str:
    response = api.post("/api/v1/tokens", {"role": "seller", "seller_id": "s-1"})
    assert response.status_code == 201, response.body
    return str(response.json_body["token"])


def queue_messages(queue_url: str, max_messages: int = 10) -> list[dict[str, Any]]:
    """Drain what is visible on a queue now (moto, no waiting)."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=max_messages, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(dict(message) for message in batch)
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def phone(aws: dict[str, str]) -> str:
    """An SQS queue subscribed to the notifications topic: what a customer's device would receive."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="phone")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name="us-east-1").subscribe(
        TopicArn=aws["NOTIFICATIONS_TOPIC_ARN"], Protocol="sqs", Endpoint=arn
    )
    return str(url)


def notifications(phone_url: str) -> list[dict[str, Any]]:
    """Everything published to the topic since the last call (as the subscribed queue received it)."""
    return [json.loads(m["Body"]) for m in queue_messages(phone_url)]


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every AWS request made while the test runs, as (service, operation, table or ""), from boto3 and pynamodb
    alike."""
    import botocore.client

    recorded: list[tuple[str, str, str]] = []
    real = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(self: Any, operation: str, params: Any) -> Any:
        recorded.append((self.meta.service_model.service_name, operation, str(params.get("TableName", ""))))
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return recorded


@pytest.fixture
def fake() -> Iterator[Any]:
    """A real HTTP integrator on loopback with scripted answers (tests/support/fake_integrator.py)."""
    from tests.support.fake_integrator import FakeIntegrator

    with FakeIntegrator() as server:
        yield server


@pytest.fixture
def sqs(aws: dict[str, str]) -> Any:
    import boto3

    return boto3.client("sqs", region_name="us-east-1")
