"""`make run`'s stack as a user gets it: started as a subprocess, used over real HTTP, stopped with SIGINT."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from chalicelib.domain.order_status import rank
from tests.support.waiting import eventually
from tools.sample_order import order_body
from tools.stack_process import free_port, local_stack

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("stack")
    env = {"ORDER_RELAY_DEMO_STEP_SECONDS": "0.2", "CIRCUIT_COOLDOWN_SECONDS": "2", "DISPATCH_RETRY_DELAYS": "1"}
    with local_stack(state, env, demo=True) as info:
        yield info
    # Ctrl-C leaves nothing behind: no state files, no moto server.
    assert not (state / "stack.json").exists() and not (state / "stack.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(info["moto_pid"], 0)


@pytest.fixture(scope="module")
def aws(stack: dict[str, Any]) -> dict[str, Any]:
    def make(service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=stack["region"],
            endpoint_url=stack["aws_endpoint_url"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    return {"sqs": make("sqs"), "sns": make("sns")}


def call(stack: dict[str, Any], method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or stack['seller_token']}"}
    return requests.request(method, stack["api_url"] + path, headers=headers, timeout=10, **kw)


def test_stack_json_has_what_design_promises(stack: dict[str, Any]) -> None:
    assert set(stack) >= {
        "api_url",
        "aws_endpoint_url",
        "region",
        "admin_token",
        "notifications_topic_arn",
        "queue_url",
        "tables",
    }
    assert set(stack["tables"]) >= {"orders", "deliveries", "idempotency"}
    assert requests.get(stack["api_url"] + "/api/v1/openapi.json", timeout=5).status_code == 200


def test_orders_travel_to_every_integrator_and_back(stack: dict[str, Any], aws: dict[str, Any]) -> None:
    sqs = aws["sqs"]
    phone = sqs.create_queue(QueueName="e2e-phone")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=phone, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["sns"].subscribe(TopicArn=stack["notifications_topic_arn"], Protocol="sqs", Endpoint=arn)

    ids = []
    for n in range(3):
        response = call(stack, "POST", "/api/v1/orders", json=order_body(user_id=f"u-e2e-{n}"))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    def all_delivered() -> list[dict[str, Any]]:
        orders = [call(stack, "GET", f"/api/v1/orders/{i}").json() for i in ids]
        return orders if all(o["status"] == "delivered" for o in orders) else []

    orders = eventually(all_delivered, timeout=30)
    for order in orders:
        states = {d["integrator"]: d for d in order["deliveries"]}
        assert set(states) == {"delivery", "loyalty", "food-ordering"}
        assert all(d["status"] == "delivered" for d in states.values())
        steps = [t["status"] for t in order["timeline"]]
        assert steps[:2] == ["pending", "dispatched"] and steps[-1] == "delivered"
        assert [rank(s) for s in steps] == sorted(rank(s) for s in steps), "the status only moved forwards"

    received: list[dict[str, Any]] = []

    def notified() -> bool:
        batch = sqs.receive_message(QueueUrl=phone, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        received.extend(json.loads(m["Body"]) for m in batch)
        return sum(1 for n in received if n["MessageAttributes"]["event"]["Value"] == "order.delivered") == 3

    eventually(notified, timeout=15)
    users = {n["MessageAttributes"]["user_id"]["Value"] for n in received}
    assert users == {"u-e2e-0", "u-e2e-1", "u-e2e-2"}


def test_the_loyalty_partner_gets_no_personal_data(stack: dict[str, Any]) -> None:
    order_id = call(stack, "POST", "/api/v1/orders", json=order_body()).json()["id"]
    shown = call(
        stack, "POST", "/api/v1/integrators/loyalty/preview", stack["admin_token"], json={"order_id": order_id}
    )
    assert shown.status_code == 200, shown.text
    body = shown.json()["body"]
    assert body["ref"] == order_id and body["member"] == "u-1" and body["units"] == 2
    assert not {"user", "seller", "phone", "email", "lat", "lng"} & set(body)
    assert shown.json()["headers"]["X-Loyalty-Key"].startswith("****")


def test_cancel_reaches_integrators_that_have_the_order(stack: dict[str, Any]) -> None:
    """The courier partner is down, so the order cannot finish before we cancel it: the partners that have it
    hear the cancel, the courier, which never got the order, hears nothing."""
    outage = f"{stack['demo_integrators']}/control/outage/delivery"
    assert requests.post(f"{outage}?seconds=600", timeout=5).status_code == 200
    try:
        order_id = call(stack, "POST", "/api/v1/orders", json=order_body()).json()["id"]

        def states() -> dict[str, dict[str, Any]]:
            deliveries = call(stack, "GET", f"/api/v1/orders/{order_id}").json()["deliveries"]
            return {d["integrator"]: d for d in deliveries}

        eventually(lambda: all(states().get(n, {}).get("status") == "delivered" for n in ("loyalty", "food-ordering")))
        response = call(stack, "DELETE", f"/api/v1/orders/{order_id}")
        assert response.status_code == 200, response.text

        def cancelled_where_received() -> bool:
            now = states()
            told = all(
                now[n]["event"] == "order.cancelled" and now[n]["status"] == "delivered"
                for n in ("loyalty", "food-ordering")
            )
            return told and now["delivery"]["status"] == "superseded"

        eventually(cancelled_where_received)
    finally:
        requests.post(f"{outage}?seconds=0", timeout=5)
        for enabled in (False, True):  # an operator's reset: enabling starts from a closed circuit
            call(stack, "PATCH", "/api/v1/integrators/delivery", token=stack["admin_token"], json={"enabled": enabled})


def test_a_crashing_batch_is_retried_then_parked_in_the_dead_letter_queue(
    stack: dict[str, Any], aws: dict[str, Any]
) -> None:
    sqs = aws["sqs"]
    queue = stack["queue_url"]
    # Redeliveries after 1 s instead of the deployed 6 minutes; the redrive policy itself is unchanged.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})
    dlq = sqs.get_queue_url(QueueName=queue.rsplit("/", 1)[1] + "-dlq")["QueueUrl"]
    # Delayed past the poller's current 1 s long poll, which read the old timeout when it started.
    sqs.send_message(QueueUrl=queue, MessageBody="{this is not json", DelaySeconds=2)
    good = call(stack, "POST", "/api/v1/orders", json=order_body()).json()["id"]
    eventually(lambda: call(stack, "GET", f"/api/v1/orders/{good}").json()["status"] != "pending")

    def parked() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=dlq, AttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        return messages

    message = eventually(parked, timeout=30)[0]
    assert message["Body"] == "{this is not json"
    assert int(message["Attributes"]["ApproximateReceiveCount"]) >= 5


def start_another(**env: str) -> subprocess.CompletedProcess[str]:
    """What a user sees when typing `make run` again."""
    return subprocess.run(
        [sys.executable, "-m", "tools.localstack"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_second_stack_refuses_to_start(stack: dict[str, Any]) -> None:
    second = start_another(
        ORDER_RELAY_STATE_DIR=str(stack["state"]),
        ORDER_RELAY_PORT=str(free_port()),
        ORDER_RELAY_AWS_PORT=str(free_port()),
    )
    assert second.returncode == 1 and "already running" in second.stderr


def test_a_port_in_use_gets_a_clear_message(stack: dict[str, Any]) -> None:
    port = stack["api_url"].rsplit(":", 1)[1]
    second = start_another(ORDER_RELAY_PORT=port, ORDER_RELAY_STATE_DIR=str(stack["state"] / "other"))
    assert second.returncode == 1 and f"port {port} is in use" in second.stderr


def test_an_unacknowledged_order_is_reported_overdue_within_10_seconds(
    stack: dict[str, Any], aws: dict[str, Any]
) -> None:
    """The demo food-ordering partner must acknowledge within 3 s and never calls back for every third order it
    receives: of three orders in a row, exactly one is reported overdue, to the seller only."""
    sqs, sns = aws["sqs"], aws["sns"]
    inboxes = {}
    for audience in ("seller", "customer"):
        url = sqs.create_queue(QueueName=f"e2e-{audience}-inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=stack["notifications_topic_arn"],
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps({"audience": [audience]})},
        )
        inboxes[audience] = url
    ids = [call(stack, "POST", "/api/v1/orders", json=order_body()).json()["id"] for _ in range(3)]

    def food_ordering(order_id: str) -> dict[str, Any]:
        deliveries = call(stack, "GET", f"/api/v1/orders/{order_id}").json()["deliveries"]
        return next((d for d in deliveries if d["integrator"] == "food-ordering"), {})

    def windows_open() -> list[dict[str, Any]]:
        states = [food_ordering(i) for i in ids]
        return states if all(s.get("ack_due_at") for s in states) else []

    due = {i: s["ack_due_at"] for i, s in zip(ids, eventually(windows_open, timeout=30), strict=True)}

    def one_overdue() -> list[str]:
        return [i for i in ids if food_ordering(i).get("ack") == "overdue"]

    [silent] = eventually(one_overdue, timeout=15)
    opened = datetime.fromisoformat(due[silent].replace("Z", "+00:00")).timestamp() - 3
    assert time.time() - opened <= 10, "a 3-second window is reported within 10 seconds"
    assert eventually(lambda: all(food_ordering(i)["ack"] == "acknowledged" for i in ids if i != silent))
    listed = call(stack, "GET", "/api/v1/orders?delivery=overdue").json()["items"]
    assert silent in [order["id"] for order in listed]
    timeline = call(stack, "GET", f"/api/v1/orders/{silent}").json()["timeline"]
    assert any(entry.get("event") == "delivery.unacknowledged" for entry in timeline)

    def events(audience: str) -> list[str]:
        batch = sqs.receive_message(QueueUrl=inboxes[audience], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"])["MessageAttributes"]["event"]["Value"] for m in batch.get("Messages", [])]

    seller_events: list[str] = []

    def seller_alerted() -> bool:
        seller_events.extend(events("seller"))
        return "delivery.unacknowledged" in seller_events

    eventually(seller_alerted)
    customer_events = events("customer")
    assert customer_events and "delivery.unacknowledged" not in customer_events


def test_a_partner_outage_opens_its_circuit_and_every_order_arrives_after(stack: dict[str, Any]) -> None:
    """The outage story over real HTTP: the demo delivery partner answers 503; its circuit opens, the deliveries
    wait instead of failing; the partner comes back, the probe closes the circuit, and every order reaches it."""
    outage = f"{stack['demo_integrators']}/control/outage/delivery"
    assert requests.post(f"{outage}?seconds=600", timeout=5).status_code == 200
    ids = [call(stack, "POST", "/api/v1/orders", json=order_body(user_id=f"u-out-{n}")).json()["id"] for n in range(5)]

    def health() -> dict[str, Any]:
        return dict(call(stack, "GET", "/api/v1/integrators/delivery/health", token=stack["admin_token"]).json())

    opened = eventually(lambda: health() if health()["circuit"] != "closed" else None, timeout=30)
    assert opened["last_error"] == "HTTP 503"
    assert all(
        {d["integrator"]: d["status"] for d in call(stack, "GET", f"/api/v1/orders/{i}").json()["deliveries"]}.get(
            "delivery"
        )
        != "failed"
        for i in ids
    ), "no delivery fails while the circuit holds it back"
    assert requests.post(f"{outage}?seconds=0", timeout=5).status_code == 200

    def delivered_everywhere() -> bool:
        orders = [call(stack, "GET", f"/api/v1/orders/{i}").json() for i in ids]
        return all(
            {d["integrator"]: d["status"] for d in o["deliveries"]}.get("delivery") == "delivered" for o in orders
        )

    eventually(delivered_everywhere, timeout=60)
    final = health()
    assert final["circuit"] == "closed" and final["waiting"] == 0
    assert final["window"]["attempts"] >= 5 and final["window"]["failed"] >= 1


def exchange(stack: dict[str, Any], raw: bytes) -> bytes:
    """Send raw bytes on one connection and read until the server has answered and closed or gone quiet."""
    host, port = stack["api_url"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(raw)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received


def test_a_refused_request_with_a_body_leaves_the_connection_usable(stack: dict[str, Any]) -> None:
    """Found by schemathesis: the body of a method API Gateway does not route was left unread on a kept-alive
    connection and answered the client's next request with an HTML 400."""
    body = b'{"order_id": "0", "status": "0"}'
    raw = (
        b"TRACE /api/v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
        b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (len(body), body)
    )
    answers = exchange(stack, raw).split(b"HTTP/1.1 ")[1:]
    assert [a.split(b" ", 1)[0] for a in answers] == [b"404", b"200"]
    assert b"text/html" not in b"".join(answers)


def test_a_chunked_body_closes_the_connection_instead_of_poisoning_it(stack: dict[str, Any]) -> None:
    raw = (
        b"POST /api/v1/callbacks/nobody HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
        b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answers = exchange(stack, raw).split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 1 and b"Connection: close" in answers[0]
    assert b"text/html" not in answers[0]
