"""Least-privilege IAM, written down once per function.

Chalice cannot see the AWS calls pynamodb and Powertools make, so its generated policy would miss them;
`autogen_policy` is off and each function gets exactly the actions below on exactly its resources. The same
table renders `.chalice/policy-<stage>-<function>.json` (for `chalice deploy`) and the role policies of the
packaged CloudFormation template (with `Fn::Sub` ARNs), and tests compare both with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.resources import TABLES, ResourceNames

CHALICE_DIR = Path(__file__).resolve().parent.parent / ".chalice"
FUNCTIONS = (
    "api_handler",
    "bearer_auth",
    "dispatch_orders",
    "sweep_outbox",
    "websocket_connect",
    "websocket_message",
    "websocket_disconnect",
    "push_tracking",
)
# `chalice deploy` learns the WebSocket API's id only once it exists: the committed policy files carry this
# placeholder, and tools/deploy.py writes the real id into push_tracking's file before deploying (the packaged
# template names the API itself, `${WebsocketAPI}`).
WEBSOCKET_API_PLACEHOLDER = "WEBSOCKET_API_ID"
READ = ("dynamodb:GetItem", "dynamodb:Query")
WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem")
IDEMPOTENCY = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
SECRETS_ADMIN = (
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:DeleteSecret",
)
LOGS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
TRACING = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")

# function -> [(actions, resources)]; resources name keys of `arns()`.
PERMISSIONS: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "api_handler": [
        ((*READ, *WRITE), ("orders", "orders_indexes", "deliveries")),
        (("dynamodb:BatchGetItem",), ("orders",)),  # a list page's orders, read by the keys its index gave
        (("dynamodb:Query",), ("deliveries_indexes",)),
        # ConditionCheckItem: revoking an admin token checks, in the same transaction, that another one remains.
        (
            (
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Scan",
                "dynamodb:ConditionCheckItem",
            ),
            ("tokens",),
        ),
        (("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan"), ("integrators",)),
        (IDEMPOTENCY, ("idempotency",)),
        (("sqs:SendMessage", "sqs:GetQueueUrl"), ("queue",)),
        (("sns:Publish",), ("topic",)),
        (SECRETS_ADMIN, ("secrets",)),
        # Tracking links: signed with the tracking key; revocation rows in the tracking table.
        (("dynamodb:GetItem", "dynamodb:PutItem"), ("tracking",)),
        (("secretsmanager:GetSecretValue",), ("tracking_secret",)),
    ],
    "bearer_auth": [
        (("dynamodb:GetItem",), ("tokens",)),
        (("secretsmanager:GetSecretValue",), ("admin_token",)),
    ],
    "dispatch_orders": [
        ((*READ, *WRITE), ("orders",)),  # UpdateItem: the move to dispatched, which clears the outbox mark
        ((*READ, *WRITE), ("deliveries",)),
        (("dynamodb:Query",), ("deliveries_indexes",)),
        (("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"), ("integrators",)),
        (IDEMPOTENCY, ("idempotency",)),
        (
            (
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
                "sqs:SendMessage",
                "sqs:GetQueueUrl",
            ),
            ("queue",),
        ),
        (("sns:Publish",), ("topic",)),
        (("secretsmanager:GetSecretValue",), ("secrets",)),
    ],
    "sweep_outbox": [
        (("dynamodb:GetItem", "dynamodb:UpdateItem"), ("orders",)),
        (("dynamodb:Query",), ("orders_outbox_index",)),
        (("dynamodb:Scan",), ("integrators",)),
        (("dynamodb:GetItem",), ("deliveries",)),
        (("dynamodb:Query",), ("deliveries_indexes",)),
        (("sqs:SendMessage", "sqs:GetQueueUrl"), ("queue",)),
    ],
    # $connect: the link's signature (the tracking key), its order (ended? revoked?), then the watcher row.
    "websocket_connect": [
        (("dynamodb:GetItem",), ("orders",)),
        (("dynamodb:GetItem", "dynamodb:PutItem"), ("tracking",)),
        (("secretsmanager:GetSecretValue",), ("tracking_secret",)),
    ],
    "websocket_message": [],  # the page's keep-alive: no AWS call at all
    "websocket_disconnect": [
        (("dynamodb:Query",), ("tracking_indexes",)),
        (("dynamodb:DeleteItem",), ("tracking",)),
    ],
    "push_tracking": [
        (("dynamodb:GetItem",), ("orders",)),
        (("dynamodb:Query",), ("deliveries",)),
        (("dynamodb:GetItem", "dynamodb:Query", "dynamodb:DeleteItem"), ("tracking",)),
        # Post to (and close) that API's connections only.
        (("execute-api:ManageConnections",), ("websocket_connections",)),
    ],
}


def arns(stage: str, *, cloudformation: bool = False, websocket_api_id: str | None = None) -> dict[str, Any]:
    """Resource ARNs. For `chalice deploy` region and account are wildcards (the role can only act in its own
    account anyway); in the packaged template they are exact, via `Fn::Sub`."""
    names = ResourceNames(stage)
    region, account, partition = (
        ("${AWS::Region}", "${AWS::AccountId}", "${AWS::Partition}") if cloudformation else ("*", "*", "aws")
    )
    tables = {
        kind: f"arn:{partition}:dynamodb:{region}:{account}:table/{names.table(kind)}" for kind, _, _ in TABLES.values()
    }
    secret_arn = f"arn:{partition}:secretsmanager:{region}:{account}:secret"
    found: dict[str, str] = {
        **tables,
        "orders_indexes": tables["orders"] + "/index/*",
        "orders_outbox_index": tables["orders"] + "/index/outbox",
        "deliveries_indexes": tables["deliveries"] + "/index/*",
        "queue": f"arn:{partition}:sqs:{region}:{account}:{names.queue}",
        "topic": f"arn:{partition}:sns:{region}:{account}:{names.topic}",
        "secrets": f"arn:{partition}:secretsmanager:{region}:{account}:secret:{names.secrets_prefix}/integrators/*",
        # Secret ARNs end in a random 6-character suffix.
        "admin_token": f"arn:{partition}:secretsmanager:{region}:{account}:secret:{names.admin_token_secret}-??????",
        "logs": f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{names.prefix}-*",
        "tracking_indexes": tables["tracking"] + "/index/*",
        "tracking_secret": f"{secret_arn}:{names.tracking_link_secret}-??????",
    }
    api = "${WebsocketAPI}" if cloudformation else websocket_api_id or WEBSOCKET_API_PLACEHOLDER
    connections = [
        f"arn:{partition}:execute-api:{region}:{account}:{api}/api/{m}/@connections/*" for m in ("POST", "DELETE")
    ]
    if cloudformation:
        return {
            **{key: {"Fn::Sub": value} for key, value in found.items()},
            "websocket_connections": [{"Fn::Sub": arn} for arn in connections],
        }
    return {**found, "websocket_connections": connections}


def policy_document(
    stage: str, function: str, *, cloudformation: bool = False, websocket_api_id: str | None = None
) -> dict[str, Any]:
    resources = arns(stage, cloudformation=cloudformation, websocket_api_id=websocket_api_id)

    def listed(kinds: tuple[str, ...]) -> list[Any]:
        found: list[Any] = []
        for kind in kinds:
            value = resources[kind]
            found.extend(value if isinstance(value, list) else [value])
        return found

    statements = [
        {"Sid": f"S{n}", "Effect": "Allow", "Action": list(actions), "Resource": listed(kinds)}
        for n, (actions, kinds) in enumerate(PERMISSIONS[function])
    ]
    statements.append({"Sid": "Logs", "Effect": "Allow", "Action": list(LOGS), "Resource": [resources["logs"]]})
    # X-Ray accepts no resource-level scoping for these two actions.
    statements.append({"Sid": "Tracing", "Effect": "Allow", "Action": list(TRACING), "Resource": ["*"]})
    return {"Version": "2012-10-17", "Statement": statements}


def policy_file(stage: str, function: str) -> Path:
    return CHALICE_DIR / f"policy-{stage}-{function}.json"


def write_policy_files(stages: tuple[str, ...] = ("dev", "prod"), websocket_api_id: str | None = None) -> list[Path]:
    written = []
    for stage in stages:
        for function in FUNCTIONS:
            path = policy_file(stage, function)
            document = policy_document(stage, function, websocket_api_id=websocket_api_id)
            path.write_text(json.dumps(document, indent=2) + "\n")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write_policy_files():
        print(path.relative_to(CHALICE_DIR.parent))
