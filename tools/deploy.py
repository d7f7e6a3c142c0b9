"""`make deploy STAGE=dev`: the `chalice deploy` route, in three steps.

1. Create or update the resources stack (`order-relay-<stage>-resources`) from infra.resources.
2. `chalice deploy --stage <stage>` (functions, API, roles from .chalice/policy-<stage>-*.json).
3. Turn on `ReportBatchItemFailures` on the dispatcher's SQS event source mapping (Chalice 1.34 cannot) and then
   tell the dispatcher so (`SQS_PARTIAL_BATCH_RESPONSE=true`); until then it fails whole batches on purpose,
   which is safe because every delivery step is idempotent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.resources import template  # noqa: E402
from tools.package import stage_environment  # noqa: E402


def stack_name(stage: str) -> str:
    return f"order-relay-{stage}-resources"


def deploy_resources(cloudformation: Any, stage: str) -> dict[str, str]:
    """Create or update the stack and wait for it; returns its outputs."""
    name, body = stack_name(stage), json.dumps(template(stage))
    try:
        cloudformation.describe_stacks(StackName=name)
        exists = True
    except cloudformation.exceptions.ClientError:
        exists = False
    if not exists:
        cloudformation.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM"])
        cloudformation.get_waiter("stack_create_complete").wait(StackName=name)
    else:
        try:
            cloudformation.update_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM"])
            cloudformation.get_waiter("stack_update_complete").wait(StackName=name)
        except cloudformation.exceptions.ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def enable_partial_batch_responses(lambda_client: Any, function_name: str) -> list[str]:
    """Add ReportBatchItemFailures to every SQS mapping of the function, then switch the function to use it."""
    updated = []
    for mapping in lambda_client.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]:
        if ":sqs:" not in mapping.get("EventSourceArn", ""):
            continue
        if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
            lambda_client.update_event_source_mapping(
                UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"]
            )
        updated.append(mapping["UUID"])
    if updated:
        config = lambda_client.get_function_configuration(FunctionName=function_name)
        variables = {**config.get("Environment", {}).get("Variables", {}), "SQS_PARTIAL_BATCH_RESPONSE": "true"}
        lambda_client.update_function_configuration(FunctionName=function_name, Environment={"Variables": variables})
    return updated


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    args = parser.parse_args()
    session = boto3.session.Session()
    outputs = deploy_resources(session.client("cloudformation"), args.stage)
    print(f"resources stack {stack_name(args.stage)}: {len(outputs)} outputs")
    subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "deploy", "--stage", args.stage],  # noqa: S603
        cwd=ROOT,
        env={**os.environ, **stage_environment(args.stage)},
        check=True,
    )
    function = f"order-relay-{args.stage}-dispatch_orders"
    mappings = enable_partial_batch_responses(session.client("lambda"), function)
    print(f"ReportBatchItemFailures on {len(mappings)} event source mapping(s) of {function}")


if __name__ == "__main__":
    main()
