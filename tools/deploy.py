"""`make deploy STAGE=dev`: the `chalice deploy` route, in steps.

1. Create or update the resources stack (`order-relay-<stage>-resources`) from infra.resources. When the orders
   table's indexes change (issue 22's layout), only the new indexes are added here, one stack update each
   (DynamoDB creates one index per table update, and backfills it before it is used).
2. `chalice deploy --stage <stage>` (functions, API, roles from .chalice/policy-<stage>-*.json).
3. When indexes changed: `tools/migrate.py` gives older orders what the new indexes read, then the indexes no
   longer read are dropped, one stack update each.
4. Turn on `ReportBatchItemFailures` on the dispatcher's SQS event source mapping (Chalice 1.34 cannot) and then
   tell the dispatcher so (`SQS_PARTIAL_BATCH_RESPONSE=true`); until then it fails whole batches on purpose,
   which is safe because every delivery step is idempotent.
4. Live tracking (Chalice 1.34 cannot express these either): `push_tracking`'s policy names the WebSocket API by
   its id, known only once the API exists (the first deploy writes it into the policy file and deploys again);
   the API and the fan-out learn the WebSocket URL (`TRACKING_WEBSOCKET_URL`); and the fan-out's subscription to
   the notifications topic gets its filter policy `audience=customer`.
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

from infra.migration import expanding, index_steps, target_order_indexes, template_with_order_indexes  # noqa: E402
from infra.policies import policy_document, policy_file  # noqa: E402
from infra.resources import ResourceNames, template  # noqa: E402
from tools.package import stage_environment  # noqa: E402


def stack_name(stage: str) -> str:
    return f"order-relay-{stage}-resources"


def deployed_order_indexes(dynamodb: Any, stage: str) -> list[dict[str, Any]] | None:
    """The orders table's indexes as deployed (None: no table yet), in the template's terms."""
    try:
        table = dynamodb.describe_table(TableName=ResourceNames(stage).table("orders"))["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    return [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in table.get("GlobalSecondaryIndexes", [])
    ]


def plan_index_changes(dynamodb: Any, stage: str) -> list[list[dict[str, Any]]]:
    """The orders table's index lists to deploy in turn: the deployed one first (every other change of the
    template goes out with it), then each step, adds before drops. [] for a new stack: it gets the target as is."""
    current = deployed_order_indexes(dynamodb, stage)
    if current is None:
        return []
    return [current, *index_steps(current, target_order_indexes(stage))]


def deploy_resources(cloudformation: Any, stage: str, body_template: dict[str, Any] | None = None) -> dict[str, str]:
    """Create or update the stack (`body_template`, else the whole template) and wait; returns its outputs."""
    name, body = stack_name(stage), json.dumps(body_template or template(stage))
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


FILTER_POLICY = {"audience": ["customer"]}


def deployed_websocket_api(stage: str) -> tuple[str, str] | None:
    """(api id, wss URL) from Chalice's record of the last deploy, or None before the first."""
    record = ROOT / ".chalice" / "deployed" / f"{stage}.json"
    if not record.exists():
        return None
    for resource in json.loads(record.read_text()).get("resources", []):
        if resource.get("resource_type") == "websocket_api":
            return str(resource["websocket_api_id"]), str(resource["websocket_api_url"]).rstrip("/")
    return None


def write_fanout_policy(stage: str, api_id: str) -> bool:
    """Name the WebSocket API in push_tracking's policy file; True when the file changed."""
    path = policy_file(stage, "push_tracking")
    text = json.dumps(policy_document(stage, "push_tracking", websocket_api_id=api_id), indent=2) + "\n"
    if path.read_text() == text:
        return False
    path.write_text(text)
    return True


def wire_tracking(lambda_client: Any, sns: Any, stage: str, websocket_url: str) -> None:
    """Tell the API and the fan-out where the WebSocket API is, and filter the fan-out's subscription."""
    for function in (f"order-relay-{stage}-api_handler", f"order-relay-{stage}-push_tracking"):
        config = lambda_client.get_function_configuration(FunctionName=function)
        variables = config.get("Environment", {}).get("Variables", {})
        if variables.get("TRACKING_WEBSOCKET_URL") != websocket_url:
            lambda_client.update_function_configuration(
                FunctionName=function,
                Environment={"Variables": {**variables, "TRACKING_WEBSOCKET_URL": websocket_url}},
            )
    fan_out = lambda_client.get_function_configuration(FunctionName=f"order-relay-{stage}-push_tracking")
    topic = next(
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(f":order-relay-{stage}-notifications")
    )
    for subscription in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        if subscription["Endpoint"] == fan_out["FunctionArn"]:
            sns.set_subscription_attributes(
                SubscriptionArn=subscription["SubscriptionArn"],
                AttributeName="FilterPolicy",
                AttributeValue=json.dumps(FILTER_POLICY),
            )


def chalice_deploy(stage: str) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "deploy", "--stage", stage],  # noqa: S603
        cwd=ROOT,
        env={**os.environ, **stage_environment(stage)},
        check=True,
    )


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    args = parser.parse_args()
    session = boto3.session.Session()
    cloudformation = session.client("cloudformation")
    steps = plan_index_changes(session.client("dynamodb"), args.stage)
    added = [steps[0], *expanding(steps[1:], steps[0])] if steps else []
    dropped = steps[len(added) :]
    outputs: dict[str, str] = {}
    for indexes in added:
        outputs = deploy_resources(cloudformation, args.stage, template_with_order_indexes(args.stage, indexes))
        print(f"orders table: index list now {[i['IndexName'] for i in indexes]}")
    if not steps:
        outputs = deploy_resources(cloudformation, args.stage)
    print(f"resources stack {stack_name(args.stage)}: {len(outputs)} outputs")
    known = deployed_websocket_api(args.stage)
    if known:
        write_fanout_policy(args.stage, known[0])
    chalice_deploy(args.stage)
    websocket = deployed_websocket_api(args.stage)
    if websocket is None:
        raise SystemExit("chalice deploy recorded no WebSocket API")
    if write_fanout_policy(args.stage, websocket[0]):  # the first deploy: the API exists only now
        chalice_deploy(args.stage)
    wire_tracking(session.client("lambda"), session.client("sns"), args.stage, websocket[1])
    print(f"live tracking: {websocket[1]} (TRACKING_WEBSOCKET_URL of the API and push_tracking)")
    if dropped:
        from tools.migrate import migrate

        progress = migrate(session.client("dynamodb"), ResourceNames(args.stage).table("orders"))
        print(f"migrated {progress.changes} changes over {progress.scanned} orders")
        for indexes in dropped:
            deploy_resources(cloudformation, args.stage, template_with_order_indexes(args.stage, indexes))
            print(f"orders table: index list now {[i['IndexName'] for i in indexes]}")
    function = f"order-relay-{args.stage}-dispatch_orders"
    mappings = enable_partial_batch_responses(session.client("lambda"), function)
    print(f"ReportBatchItemFailures on {len(mappings)} event source mapping(s) of {function}")


if __name__ == "__main__":
    main()
