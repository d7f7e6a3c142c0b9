"""`make package STAGE=dev`: one CloudFormation (SAM) template with the app and every resource it needs.

1. Writes the merge template: infra.resources (tables, queues, topic, alarms), exact least-privilege role
   policies, the real queue URL and topic ARN in the functions' environment, and `ReportBatchItemFailures` on the
   SQS event source (Chalice 1.34 cannot express it).
2. Runs `chalice package --merge-template`.
3. Removes boto3, botocore and their dependencies from the zip: the Lambda runtime ships them, and pynamodb's
   dependency on botocore would otherwise make up most of the package. Also removes the Swagger UI bundle
   Powertools ships for its own event handler (a tenth of the zip; routing here is Chalice's).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.settings import DEFAULT_DISPATCH_MAX_CONCURRENCY  # noqa: E402
from infra.policies import FUNCTIONS, policy_document  # noqa: E402
from infra.resources import template  # noqa: E402

# What the python3.12 Lambda runtime already has (boto3 and its dependencies).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "six")
# Static files no code path here reads: Powertools' Swagger UI is served only by its own event handler.
UNUSED_ASSETS = ("aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui",)
LOGICAL_IDS = {
    "api_handler": "APIHandler",
    "bearer_auth": "BearerAuth",
    "dispatch_orders": "DispatchOrders",
    "sweep_outbox": "SweepOutbox",
    "websocket_connect": "WebsocketConnect",
    "websocket_message": "WebsocketMessage",
    "websocket_disconnect": "WebsocketDisconnect",
    "push_tracking": "PushTracking",
}
GATEWAY_RESPONSES = (
    ("UNAUTHORIZED", "401", "unauthorized", "missing bearer token"),
    ("ACCESS_DENIED", "403", "forbidden", "invalid or revoked bearer token"),
    ("MISSING_AUTHENTICATION_TOKEN", "404", "not_found", "no such route"),
)
ROLE_IDS = {
    "api_handler": "ApiHandlerRole",
    "bearer_auth": "BearerAuthRole",
    "dispatch_orders": "DispatchOrdersRole",
    "sweep_outbox": "SweepOutboxRole",
    "websocket_connect": "WebsocketConnectRole",
    "websocket_message": "WebsocketMessageRole",
    "websocket_disconnect": "WebsocketDisconnectRole",
    "push_tracking": "PushTrackingRole",
}
# The address tracking pages connect to, and that push_tracking posts to (Chalice names the API `WebsocketAPI`).
WEBSOCKET_URL = {"Fn::Sub": "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}


def merge_template(stage: str, max_concurrency: int) -> dict[str, Any]:
    merged = template(stage)
    resources = merged["Resources"]
    for function in FUNCTIONS:
        resources[ROLE_IDS[function]] = {
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": f"{function}-least-privilege",
                        "PolicyDocument": policy_document(stage, function, cloudformation=True),
                    }
                ]
            }
        }
        resources[LOGICAL_IDS[function]] = {
            "Properties": {
                "Environment": {
                    "Variables": {
                        "ORDERS_QUEUE_URL": {"Ref": "OrdersQueue"},
                        "NOTIFICATIONS_TOPIC_ARN": {"Ref": "NotificationsTopic"},
                        "SQS_PARTIAL_BATCH_RESPONSE": "true",
                        "TRACKING_WEBSOCKET_URL": WEBSOCKET_URL,
                    }
                }
            }
        }
    # API Gateway's own refusals answer in the service's error shape (and no longer echo the Authorization header).
    resources["RestAPI"] = {
        "Properties": {
            "GatewayResponses": {
                kind: {
                    "StatusCode": status,
                    "ResponseTemplates": {
                        "application/json": json.dumps({"error": {"code": code, "message": message, "details": []}})
                    },
                }
                for kind, status, code, message in GATEWAY_RESPONSES
            }
        }
    }
    resources["DispatchOrders"]["Properties"]["Events"] = {
        "DispatchOrdersSqsEventSource": {
            "Properties": {
                # Fn::Sub, not GetAtt: Chalice's own value is an Fn::Sub and the merge is a deep dict merge.
                "Queue": {"Fn::Sub": "${OrdersQueue.Arn}"},
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": max_concurrency},
            }
        }
    }
    # push_tracking hears only what customers hear (Chalice 1.34 cannot set an SNS filter policy).
    resources["PushTracking"]["Properties"]["Events"] = {
        "PushTrackingSnsSubscription": {"Properties": {"FilterPolicy": {"audience": ["customer"]}}}
    }
    return merged


def slim(zip_path: Path) -> tuple[int, int]:
    """Rewrite the zip without what the runtime provides or nothing reads; returns (zipped, unzipped bytes)."""
    slimmed = zip_path.with_suffix(".slim.zip")
    unzipped = 0
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(slimmed, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            top = item.filename.split("/", 1)[0]
            package = top.split("-", 1)[0].split(".", 1)[0]
            if package in RUNTIME_PROVIDED or item.filename.startswith(UNUSED_ASSETS):
                continue
            target.writestr(item, source.read(item.filename))
            unzipped += item.file_size
    slimmed.replace(zip_path)
    return zip_path.stat().st_size, unzipped


def stage_environment(stage: str) -> dict[str, str]:
    """The stage's variables from .chalice/config.json, for the chalice command that loads app.py: the app reads
    the ones that wire event sources (ORDERS_QUEUE_NAME, DISPATCH_MAX_CONCURRENCY) when it is loaded."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    variables = config["stages"][stage].get("environment_variables", {})
    return {name: str(value) for name, value in variables.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    parser.add_argument("--out", default=str(ROOT / "build" / "package"))
    args = parser.parse_args()
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    concurrency = int(
        config["stages"][args.stage]["environment_variables"].get(
            "DISPATCH_MAX_CONCURRENCY", DEFAULT_DISPATCH_MAX_CONCURRENCY
        )
    )
    build = ROOT / "build"
    build.mkdir(exist_ok=True)
    merge = build / f"merge-{args.stage}.json"
    merge.write_text(json.dumps(merge_template(args.stage, concurrency), indent=2))
    env = {**os.environ, **stage_environment(args.stage)}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    subprocess.run(  # noqa: S603 - our own chalice, fixed arguments
        [
            str(Path(sys.executable).parent / "chalice"),
            "package",
            "--stage",
            args.stage,
            "--merge-template",
            str(merge),
            args.out,
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    zipped, unzipped = slim(Path(args.out) / "deployment.zip")
    print(
        f"package: {args.out}/sam.json + deployment.zip ({zipped / 1e6:.2f} MB zipped, "
        f"{unzipped / 1e6:.2f} MB unzipped; boto3, botocore and their dependencies left to the Lambda runtime)"
    )


if __name__ == "__main__":
    main()
