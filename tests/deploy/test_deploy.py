"""What gets deployed: the packaged template, its IAM, the slim zip, and that each function's policy allows
every AWS call its code really makes (recorded while the code runs against moto)."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest

from infra.policies import FUNCTIONS, PERMISSIONS, policy_document, policy_file
from infra.resources import template
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator, Reply
from tests.support.waiting import eventually
from tools.deploy import enable_partial_batch_responses
from tools.poller import drain
from tools.sample_order import order_body

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("package")
    result = subprocess.run(
        [sys.executable, "tools/package.py", "--stage", "prod", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {"dir": out, "template": json.loads((out / "sam.json").read_text()), "output": result.stdout}


# --- the package -----------------------------------------------------------------------------------------------


def test_packaged_template_passes_cfn_lint(package: dict[str, Any]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(package["dir"] / "sam.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zip_leaves_botocore_to_the_runtime_and_stays_small(package: dict[str, Any]) -> None:
    archive = zipfile.ZipFile(package["dir"] / "deployment.zip")
    tops = {name.split("/", 1)[0] for name in archive.namelist()}
    assert not {t for t in tops if t.split("-")[0] in ("boto3", "botocore", "s3transfer")}, tops
    assert {"app.py", "chalicelib", "pynamodb", "aws_lambda_powertools", "pydantic_core"} <= tops
    assert not [n for n in archive.namelist() if "/swagger-ui" in n], "Powertools' Swagger UI is never served"
    assert (package["dir"] / "deployment.zip").stat().st_size < 5_000_000


def test_sqs_event_source_reports_batch_item_failures(package: dict[str, Any]) -> None:
    dispatcher = package["template"]["Resources"]["DispatchOrders"]["Properties"]
    source = dispatcher["Events"]["DispatchOrdersSqsEventSource"]["Properties"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Queue"] == {"Fn::Sub": "${OrdersQueue.Arn}"}
    assert dispatcher["Environment"]["Variables"]["SQS_PARTIAL_BATCH_RESPONSE"] == "true"
    assert dispatcher["ReservedConcurrentExecutions"] == 50


def test_gateway_refusals_use_the_service_error_shape(package: dict[str, Any]) -> None:
    responses = package["template"]["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert {kind: r["StatusCode"] for kind, r in responses.items()} == {
        "UNAUTHORIZED": "401",
        "ACCESS_DENIED": "403",
        "MISSING_AUTHENTICATION_TOKEN": "404",
    }
    body = json.loads(responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"])
    assert body["error"]["code"] == "not_found"


def test_every_resource_the_code_names_is_in_the_template(package: dict[str, Any]) -> None:
    resources = package["template"]["Resources"]
    names = {
        r["Properties"].get("TableName") or r["Properties"].get("QueueName") or r["Properties"].get("TopicName")
        for r in resources.values()
        if r["Type"].startswith(("AWS::DynamoDB", "AWS::SQS", "AWS::SNS"))
    }
    for stage in ("dev", "prod"):
        env = CONFIG["stages"][stage]["environment_variables"]
        named = {v for k, v in env.items() if k.endswith(("_TABLE", "_QUEUE_NAME", "_TOPIC_NAME"))}
        assert named <= {n.replace("-prod-", f"-{stage}-") for n in names}, named
        assert (
            resources["AdminTokenSecret"]["Properties"]["Name"].replace("/prod/", f"/{stage}/")
            == env["ORDER_RELAY_ADMIN_TOKEN_SECRET"]
        )
    api = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api["ORDERS_QUEUE_URL"] == {"Ref": "OrdersQueue"} and api["NOTIFICATIONS_TOPIC_ARN"] == {
        "Ref": "NotificationsTopic"
    }


def test_queue_has_a_dead_letter_queue_and_six_times_the_dispatcher_timeout() -> None:
    resources = template("prod")["Resources"]
    queue = resources["OrdersQueue"]["Properties"]
    timeout = CONFIG["stages"]["prod"]["lambda_functions"]["dispatch_orders"]["lambda_timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    tables = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert all(t["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] for t in tables)
    ttl = {t["TableName"].rsplit("-", 1)[1] for t in tables if "TimeToLiveSpecification" in t}
    assert ttl == {"deliveries", "idempotency", "tracking"}
    alarms = {k for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms == {
        "DeadLetterQueueAlarm",
        "DeliveryFailuresAlarm",
        "DispatcherErrorsAlarm",
        "DispatcherThrottlesAlarm",
        "TrackingErrorsAlarm",
        "Api5xxAlarm",
    }


def test_roles_are_least_privilege(package: dict[str, Any]) -> None:
    from tools.package import ROLE_IDS

    assert set(ROLE_IDS) == set(FUNCTIONS)
    for function, role in ROLE_IDS.items():
        policies = package["template"]["Resources"][role]["Properties"]["Policies"]
        assert [p["PolicyDocument"] for p in policies] == [policy_document("prod", function, cloudformation=True)]
        for statement in policies[0]["PolicyDocument"]["Statement"]:
            assert not any(action.endswith("*") for action in statement["Action"]), statement
            if statement["Resource"] == ["*"]:
                assert statement["Sid"] == "Tracing"


def test_the_websocket_api_and_its_fan_out_are_packaged(package: dict[str, Any]) -> None:
    resources = package["template"]["Resources"]
    assert resources["WebsocketAPI"]["Properties"]["ProtocolType"] == "WEBSOCKET"
    assert {"WebsocketConnectRoute", "WebsocketMessageRoute", "WebsocketDisconnectRoute"} <= set(resources)
    fan_out = resources["PushTracking"]["Properties"]
    subscription = fan_out["Events"]["PushTrackingSnsSubscription"]["Properties"]
    assert subscription["FilterPolicy"] == {"audience": ["customer"]}
    assert subscription["Topic"]["Fn::Sub"].endswith(":order-relay-prod-notifications")
    url = {"Fn::Sub": "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}
    for function in ("APIHandler", "PushTracking"):
        assert resources[function]["Properties"]["Environment"]["Variables"]["TRACKING_WEBSOCKET_URL"] == url
    manage = [
        s
        for s in resources["PushTrackingRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        if "execute-api:ManageConnections" in s["Action"]
    ]
    assert manage == [
        {
            "Sid": manage[0]["Sid"],
            "Effect": "Allow",
            "Action": ["execute-api:ManageConnections"],
            "Resource": [
                {
                    "Fn::Sub": f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:"
                    f"${{WebsocketAPI}}/api/{method}/@connections/*"
                }
                for method in ("POST", "DELETE")
            ],
        }
    ]
    assert "WebsocketConnectEndpointURL" in package["template"]["Outputs"]


def test_committed_policy_files_match_the_permission_table() -> None:
    for stage in ("dev", "prod"):
        for function in FUNCTIONS:
            assert json.loads(policy_file(stage, function).read_text()) == policy_document(stage, function)
            assert (
                CONFIG["stages"][stage]["lambda_functions"][function]["iam_policy_file"]
                == policy_file(stage, function).name
            )


def test_permission_table_is_what_the_deploy_docs_list() -> None:
    manual = (ROOT / "docs" / "deploy-and-operations.md").read_text()
    section = manual.split("## Least-privilege IAM", 1)[1].split("\n## ", 1)[0]
    for function, grants in PERMISSIONS.items():
        rows = section.split(f"| `{function}` |", 1)[1].split("\n| `", 1)[0]  # up to the next function's rows
        for actions, _ in grants:
            for action in actions:
                assert f"`{action}`" in rows, (function, action)


def test_enabling_partial_batch_responses_after_chalice_deploy(aws: dict[str, str]) -> None:
    lam = boto3.client("lambda", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(
        FunctionName="order-relay-test-dispatch_orders",
        Runtime="python3.12",
        Role=role,
        Handler="app.dispatch_orders",
        Code={"ZipFile": b"x"},
        Environment={"Variables": {"SQS_PARTIAL_BATCH_RESPONSE": "false", "KEEP": "me"}},
    )
    queue_arn = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=aws["ORDERS_QUEUE_URL"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="order-relay-test-dispatch_orders")
    assert len(enable_partial_batch_responses(lam, "order-relay-test-dispatch_orders")) == 1
    mapping = lam.list_event_source_mappings(FunctionName="order-relay-test-dispatch_orders")["EventSourceMappings"][0]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    variables = lam.get_function_configuration(FunctionName="order-relay-test-dispatch_orders")["Environment"]
    assert variables["Variables"] == {"SQS_PARTIAL_BATCH_RESPONSE": "true", "KEEP": "me"}


# --- the policies cover what the code does ---------------------------------------------------------------------


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every AWS call made while the fixture is active, as (iam action, resource name)."""
    recorded: list[tuple[str, str]] = []
    real = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def spy(self: Any, operation: str, params: dict[str, Any]) -> Any:
        prefix = self.meta.service_model.signing_name
        target = (
            params.get("TableName")
            or next(iter(params.get("RequestItems") or {}), None)  # BatchGetItem / BatchWriteItem
            or params.get("QueueUrl", "").rsplit("/", 1)[-1]
            or params.get("QueueName")
            or params.get("TopicArn", "").rsplit(":", 1)[-1]
            or params.get("SecretId")
            or params.get("Name")
            or ""
        )
        if params.get("IndexName"):
            target += f"/index/{params['IndexName']}"
        if params.get("SecretId") and not params["SecretId"].startswith("arn:"):
            target += "-AbCdEf"  # IAM sees the secret's ARN, which ends in a random six-character suffix
        if prefix == "execute-api":  # the @connections API: one IAM action, the method in the resource
            method = {"PostToConnection": "POST", "DeleteConnection": "DELETE"}.get(operation, "GET")
            recorded.append(
                (
                    "execute-api:ManageConnections",
                    f"WEBSOCKET_API_ID/api/{method}/@connections/{params['ConnectionId']}",
                )
            )
            return real(self, operation, params)
        if "TransactItems" in params:  # IAM authorises each item of a transaction as its own action
            kinds = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
            }
            for entry in params["TransactItems"]:
                for kind, item in entry.items():
                    recorded.append((f"dynamodb:{kinds[kind]}", item["TableName"]))
            return real(self, operation, params)
        recorded.append((f"{prefix}:{operation}", target))
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    yield recorded


def resource_name(arn: str) -> str:
    for marker in (":table/", ":secret:"):
        if marker in arn:
            return arn.split(marker, 1)[1]
    return arn.rsplit(":", 1)[-1]


def allowed(function: str, action: str, target: str) -> bool:
    return any(
        action in statement["Action"] and any(fnmatch.fnmatch(target, resource_name(r)) for r in statement["Resource"])
        for statement in policy_document("test", function)["Statement"]
    )


def assert_covered(function: str, recorded: list[tuple[str, str]]) -> None:
    missing = sorted({(a, t) for a, t in recorded if not allowed(function, a, t)})
    assert not missing, f"{function} makes calls its policy does not allow: {missing}"


def test_api_handler_policy_covers_the_api(api: Api, calls: list[tuple[str, str]]) -> None:
    with FakeIntegrator() as fake:
        fake.default("/p", Reply(200))
        assert (
            api.post(
                "/api/v1/integrators",
                {"name": "p", "url": fake.url("/p"), "auth": {"type": "bearer", "token": "token-123456"}},
            ).status_code
            == 201
        )
        api.patch("/api/v1/integrators/p", {"rotate_callback_secret": True})
        api.get("/api/v1/integrators")
        order = api.post("/api/v1/orders", order_body(), headers={"Idempotency-Key": "k"}).json_body
        api.get("/api/v1/orders?seller_id=s-1&status=pending")
        api.get(f"/api/v1/orders/{order['id']}/deliveries")
        api.patch(f"/api/v1/orders/{order['id']}", {"order": {"user_note": "x"}})
        api.delete(f"/api/v1/orders/{order['id']}")
        token = api.post("/api/v1/tokens", {"role": "seller", "seller_id": "s-1"}).json_body
        api.delete(f"/api/v1/tokens/{token['id']}")
        admin = api.post("/api/v1/tokens", {"role": "admin", "expires_in_seconds": 600}).json_body
        assert api.delete(f"/api/v1/tokens/{admin['id']}").status_code == 204  # checks the bootstrap token remains
        tracked = api.get(f"/api/v1/orders/{order['id']}").json_body["tracking_url"].split("#", 1)[1]
        assert api.get("/api/v1/track", headers={"X-Tracking-Token": tracked}, token="").status_code == 200
        assert api.post(f"/api/v1/orders/{order['id']}/tracking-links").status_code == 201
        api.delete("/api/v1/integrators/p")
    assert len(calls) > 20
    assert ("dynamodb:PutItem", "order-relay-test-tracking") in calls
    assert_covered("api_handler", calls)


def test_dispatcher_and_authorizer_and_sweeper_policies_cover_their_code(
    api: Api, app: Any, aws: dict[str, str], calls: list[tuple[str, str]]
) -> None:
    with FakeIntegrator() as fake:
        fake.default("/p", Reply(200, json={"external_id": "x"}))
        api.post("/api/v1/integrators", {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}})
        order_id = api.post("/api/v1/orders", order_body()).json_body["id"]
        api.delete(f"/api/v1/orders/{order_id}")
        calls.clear()
        drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])
    dispatcher_calls = [
        c for c in calls if c[0] not in ("sqs:ReceiveMessage", "sqs:DeleteMessageBatch", "sqs:GetQueueAttributes")
    ]  # made by the event source
    assert any(a == "dynamodb:PutItem" for a, _ in dispatcher_calls)
    assert_covered("dispatch_orders", dispatcher_calls)

    from chalicelib.api.authorizer import authorize

    calls.clear()
    authorize("Bearer orl_0123456789abcdef_" + "x" * 43)
    assert calls == [("dynamodb:GetItem", "order-relay-test-tokens")]
    assert_covered("bearer_auth", calls)

    from chalicelib.orders.service import sweep_outbox

    calls.clear()
    sweep_outbox()
    assert calls and ("dynamodb:Query", "order-relay-test-orders/index/outbox") in calls
    assert_covered("sweep_outbox", calls)


def test_the_tracking_functions_policies_cover_their_code(
    api: Api,
    app: Any,
    aws: dict[str, str],
    configure: Any,
    calls: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$connect, the fan-out and $disconnect, each recorded on its own, through the local WebSocket API."""
    from websockets.sync.client import connect

    from chalicelib.tracking.fanout import push_order, reset_client
    from tools.local_websocket import LocalWebsocketApi

    disconnects: list[str] = []  # a connection's id once its $disconnect has run to the end
    name = app.websocket_handlers["$disconnect"].name
    disconnect = app.handler_map[name]

    def disconnect_counted(event: dict[str, Any], context: Any) -> Any:
        try:
            return disconnect(event, context)
        finally:
            disconnects.append(event["requestContext"]["connectionId"])

    monkeypatch.setitem(app.handler_map, name, disconnect_counted)
    gateway = LocalWebsocketApi(app).start()
    configure(TRACKING_WEBSOCKET_URL=gateway.websocket_url, TRACKING_MANAGEMENT_URL=gateway.management_url)
    reset_client()
    try:
        order = api.post("/api/v1/orders", order_body()).json_body
        token = order["tracking_url"].split("#", 1)[1]
        calls.clear()
        page = connect(f"{gateway.websocket_url}?token={token}")
        assert ("dynamodb:PutItem", "order-relay-test-tracking") in calls
        assert_covered("websocket_connect", calls)
        page.send('{"action": "ping"}')
        calls.clear()
        assert push_order(order["id"]).sent == 1
        assert any(action == "execute-api:ManageConnections" for action, _ in calls)
        assert_covered("push_tracking", calls)
        api.post(f"/api/v1/orders/{order['id']}/tracking-links")  # the next change closes the revoked page
        calls.clear()
        assert push_order(order["id"]).revoked == 1
        # The closed connection's $disconnect (another function) runs in the gateway's thread meanwhile.
        assert_covered("push_tracking", [c for c in calls if not c[1].endswith("/index/by_connection")])
        page.close()
        eventually(lambda: len(disconnects) == 1)  # before the next page: its calls are not the next $disconnect's
        fresh = api.get(f"/api/v1/orders/{order['id']}").json_body["tracking_url"].split("#", 1)[1]
        page = connect(f"{gateway.websocket_url}?token={fresh}")
        calls.clear()
        page.close()
        eventually(lambda: len(disconnects) == 2)  # every call of this $disconnect recorded
        assert ("dynamodb:Query", "order-relay-test-tracking/index/by_connection") in calls
        assert_covered("websocket_disconnect", calls)
    finally:
        gateway.stop()
        reset_client()


def test_make_deploy_wires_live_tracking_after_chalice_deploy(aws: dict[str, str]) -> None:
    """What Chalice 1.34 cannot express: the WebSocket URL in the API and the fan-out, the fan-out's filter."""
    from tools.deploy import wire_tracking

    lam = boto3.client("lambda", region_name="us-east-1")
    sns = boto3.client("sns", region_name="us-east-1")
    role = boto3.client("iam", region_name="us-east-1").create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    arns = {}
    for name in ("api_handler", "push_tracking"):
        arns[name] = lam.create_function(
            FunctionName=f"order-relay-test-{name}",
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="app.app",
            Code={"ZipFile": b"x"},
            Environment={"Variables": {"KEEP": "me"}},
        )["FunctionArn"]
    sns.subscribe(TopicArn=aws["NOTIFICATIONS_TOPIC_ARN"], Protocol="lambda", Endpoint=arns["push_tracking"])
    url = "wss://abc123.execute-api.us-east-1.amazonaws.com/api"
    wire_tracking(lam, sns, "test", url)
    for name in arns:
        variables = lam.get_function_configuration(FunctionName=f"order-relay-test-{name}")["Environment"]
        assert variables["Variables"] == {"KEEP": "me", "TRACKING_WEBSOCKET_URL": url}
    subscription = sns.list_subscriptions_by_topic(TopicArn=aws["NOTIFICATIONS_TOPIC_ARN"])["Subscriptions"][0]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    assert json.loads(attributes["FilterPolicy"]) == {"audience": ["customer"]}
