"""What a cold start loads. Every Lambda function imports app.py before its first event, and the authorizer runs
before every API call: heavy modules made lazy (bench/coldstart.py measured them) must stay lazy, or the gain is
silently lost. Each check runs in a fresh interpreter, as Lambda does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Loaded only by the handlers that need them, never by `import app`.
HEAVY = ("pydantic", "aws_lambda_powertools", "boto3", "botocore", "pynamodb", "requests")
SETTINGS = {
    "AWS_REGION": "us-east-1",
    "ORDERS_TABLE": "o",
    "TOKENS_TABLE": "t",
    "INTEGRATORS_TABLE": "i",
    "DELIVERIES_TABLE": "d",
    "IDEMPOTENCY_TABLE": "x",
    "ORDERS_QUEUE_URL": "https://sqs/q",
    "ORDERS_QUEUE_NAME": "q",
    "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
    "SECRETS_PREFIX": "order-relay/test",
    "ORDER_RELAY_ADMIN_TOKEN": "cold-start-admin-token",
}


def loaded_after(code: str) -> list[str]:
    """Which HEAVY packages a fresh interpreter holds after running `code` in the project directory."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORDER"))} | SETTINGS
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    return sorted(modules.intersection(HEAVY))


def test_importing_the_app_loads_none_of_the_heavy_packages() -> None:
    assert loaded_after("import app") == []


def test_the_authorizer_checks_a_token_without_pydantic_or_powertools() -> None:
    """What remains loaded is what any token check needs. The bootstrap admin token costs one GetItem, as any
    token does (the row that says whether an admin disabled it): stubbed here, there is no AWS."""
    code = (
        "import app\n"
        "from chalicelib.db import tokens\n"
        "tokens.get = lambda token_id: None\n"
        "event = {'type': 'TOKEN', 'authorizationToken': 'Bearer cold-start-admin-token', 'methodArn': 'arn:m'}\n"
        "answer = app.bearer_auth(event, None)\n"
        "assert answer['policyDocument']['Statement'][0]['Effect'] == 'Allow', answer\n"
    )
    assert loaded_after(code) == ["botocore", "pynamodb"]


def test_the_tracking_fan_out_of_an_unwatched_order_loads_neither_pydantic_nor_powertools() -> None:
    """Every customer notification reaches push_tracking; most orders have no page open. Stubbed: no AWS here."""
    code = (
        "import app\n"
        "from chalicelib.tracking import store\n"
        "store.watchers = lambda order_id: iter(())\n"
        "attributes = {'audience': {'Type': 'String', 'Value': 'customer'}, "
        "'order_id': {'Type': 'String', 'Value': 'ord_1'}}\n"
        "event = {'Records': [{'EventSource': 'aws:sns', 'EventSubscriptionArn': 'arn:s', "
        "'Sns': {'Message': '{}', 'Subject': None, 'MessageAttributes': attributes}}]}\n"
        "assert app.push_tracking(event, None) == {'orders': 1, 'sent': 0, 'gone': 0}\n"
    )
    assert loaded_after(code) == ["botocore", "pynamodb"]
