"""Shared fixtures. moto is started inside fixtures (never at import) and the tables, queues and topic come
from the same description that deploys them (infra.resources), so tests and AWS cannot drift apart."""

from __future__ import annotations

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

from tests.support.api import ADMIN_TOKEN, STAGE, Api  # noqa: E402
from tests.support.aws import atomic_moto_writes  # noqa: E402
from tools.caches import reset_all  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def one_botocore_loader() -> Iterator[None]:
    """Every botocore session of the test process shares one loader of service models. Each test starts a new
    moto account and forgets the service's clients (as a new Lambda container would), so each test made about ten
    new sessions and clients, and each new session read and parsed the same JSON models from disk again: about a
    third of a functional test's time. The models are read-only; what a client does is unchanged."""
    import functools

    import botocore.loaders
    import botocore.session

    patch = pytest.MonkeyPatch()
    patch.setattr(botocore.session, "create_loader", functools.cache(botocore.loaders.create_loader))
    yield
    patch.undo()


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
