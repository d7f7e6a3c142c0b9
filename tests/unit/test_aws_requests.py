"""The benchmark's request counter must see every request (boto3's and pynamodb's own session), or `make bench`
would report a cheap service that is not."""

from __future__ import annotations

from typing import Any

from bench.aws_requests import recording
from tests.support.api import ADMIN_TOKEN, Api
from tools.sample_order import order_body


def test_counts_exactly_the_requests_sent(aws: dict[str, str]) -> None:
    import boto3

    table = aws["TOKENS_TABLE"]
    with recording() as log:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.put_item(TableName=table, Item={"token_id": {"S": "t-1"}})
        dynamodb.get_item(TableName=table, Key={"token_id": {"S": "t-1"}})
        boto3.client("sqs", region_name="us-east-1").send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody="x")
    assert log.counts() == {("dynamodb", "PutItem"): 1, ("dynamodb", "GetItem"): 1, ("sqs", "SendMessage"): 1}
    assert [(r.target, r.key) for r in log.requests[:2]] == [(table, "t-1"), (table, "t-1")]
    assert log.total == 3 and log.summary() == "dynamodb 2 (GetItem 1, PutItem 1), sqs 1 (SendMessage 1)"


def test_counts_pynamodb_requests_made_by_the_service(api: Api, app: Any) -> None:
    """Creating an order goes through pynamodb's own botocore session: its PutItem must be counted."""
    assert api.token == ADMIN_TOKEN
    with recording() as log:
        response = api.post("/api/v1/orders", order_body())
    assert response.status_code == 201
    assert log.counts()[("dynamodb", "PutItem")] >= 1 and log.counts()[("sqs", "SendMessage")] == 1


def test_nothing_is_counted_outside_a_recording(aws: dict[str, str]) -> None:
    import boto3

    with recording() as log:
        pass
    boto3.client("sqs", region_name="us-east-1").send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody="x")
    assert log.total == 0
