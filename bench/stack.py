"""A moto server in its own process with every resource provisioned, and the service's environment pointing at
it: AWS calls are real HTTP for the code under test, as in Lambda. Shared by every in-process benchmark."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "ORDER_RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "ALLOW_LOOPBACK_INTEGRATORS": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "order-relay",
        "POWERTOOLS_METRICS_NAMESPACE": "OrderRelay",
        "SQS_PARTIAL_BATCH_RESPONSE": "true",
        "SWEEPER_GRACE_SECONDS": "0",
    }


@contextmanager
def moto_server() -> Iterator[str]:
    """Start a moto server on a free loopback port; yields its endpoint URL."""
    from tools.localstack import start_moto

    process: subprocess.Popen[bytes] = start_moto(free_port())
    try:
        port = str(process.args[-1])  # type: ignore[index]
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # a loaded machine and a big table: it may not stop in time
            process.kill()
            process.wait(10)


@contextmanager
def stack(stage: str = "bench") -> Iterator[dict[str, str]]:
    """Environment of a fresh moto server with every resource provisioned (process env is changed)."""
    from bench.aws_requests import install

    install()  # before any client exists, so every client of the service is counted
    with moto_server() as endpoint:
        os.environ.update(service_environment(endpoint))
        os.environ.pop("AWS_PROFILE", None)
        from infra.resources import provision
        from tools.caches import reset_all

        env = provision(stage, region=REGION, endpoint_url=endpoint)
        os.environ.update(env)
        reset_all()
        yield {**service_environment(endpoint), **env}
        reset_all()


@contextmanager
def api_client(app: Any, tmp: Path) -> Iterator[Any]:
    """chalice.test.Client on a project directory whose stage sets no variables (the real config would point
    the app at the dev stage's tables during each request)."""
    from chalice.test import Client

    (tmp / ".chalice").mkdir(exist_ok=True)
    (tmp / ".chalice" / "config.json").write_text(json.dumps({"version": "2.0", "app_name": "order-relay"}))
    with Client(app, project_dir=str(tmp)) as client:
        yield client


def call(client: Any, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN, **headers: str) -> Any:
    all_headers = {"Content-Type": "application/json", **headers}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    return client.http.request(method, path, headers=all_headers, body=data)


def register_partners(client: Any, fake: Any, names: tuple[str, ...]) -> dict[str, str]:
    """Register one always-200 integrator per name on the fake partner; returns each one's callback secret."""
    from tests.support.fake_integrator import Reply

    secrets: dict[str, str] = {}
    for name in names:
        fake.default(f"/{name}", Reply(200, json={"ok": True}))
        body = {"name": name, "url": fake.url(f"/{name}"), "auth": {"type": "none"}}
        made = call(client, "POST", "/api/v1/integrators", body)
        assert made.status_code == 201, made.body
        secrets[name] = made.json_body["callback_secret"]
    return secrets


def signed(secret: str, msg_id: str, body: str | bytes) -> dict[str, str]:
    """Standard Webhooks headers for a callback, signed now (a library the service does not use, as a partner)."""
    import standardwebhooks

    moment = datetime.now(UTC)
    text = body.decode() if isinstance(body, bytes) else body
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, moment, text),
    }
