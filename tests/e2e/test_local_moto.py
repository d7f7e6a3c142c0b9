"""The local stack's moto server (tools/moto_server.py) keeps TransactWriteItems all-or-nothing while its rollback
copies only the items a transaction names: a failed transaction leaves every item as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bench.stack import free_port
from tools.localstack import start_moto

TABLE = "rows"


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    process = start_moto(free_port())
    try:
        port = str(process.args[-1])  # type: ignore[index]
        session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
        client = session.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "queue", "AttributeType": "S"},
                {"AttributeName": "since", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_queue",
                    "KeySchema": [
                        {"AttributeName": "queue", "KeyType": "HASH"},
                        {"AttributeName": "since", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client
    finally:
        process.terminate()
        process.wait(10)


def key(pk: str, sk: str = "state") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item(client: Any, pk: str, sk: str = "state") -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get_item(TableName=TABLE, Key=key(pk, sk), ConsistentRead=True).get("Item")
    return found


def set_n(pk: str, n: int, condition: str | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": key(pk),
        "UpdateExpression": "SET n = :n",
        "ExpressionAttributeValues": {":n": {"N": str(n)}},
    }
    if condition:
        update["ConditionExpression"] = condition
    return {"Update": update}


def test_a_transaction_that_fails_its_last_condition_leaves_every_item_as_it_was(dynamodb: Any) -> None:
    for pk in ("a", "b", "d"):
        dynamodb.put_item(TableName=TABLE, Item={**key(pk), "n": {"N": "1"}})
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**key("a", "attempt-1"), "outcome": {"S": "delivered"}}}},
                set_n("a", 2),
                {"Delete": {"TableName": TABLE, "Key": key("b")}},
                set_n("d", 3, condition="n = :n"),  # n is 1, not 3: the whole transaction is cancelled
            ]
        )
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert item(dynamodb, "a", "attempt-1") is None, "the new item was taken back"
    assert item(dynamodb, "a") == {**key("a"), "n": {"N": "1"}}, "the updated item was put back"
    assert item(dynamodb, "b") == {**key("b"), "n": {"N": "1"}}, "the deleted item was put back"
    assert item(dynamodb, "d") == {**key("d"), "n": {"N": "1"}}


def test_a_transaction_that_passes_writes_every_item(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={**key("c"), "n": {"N": "1"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {**key("c", "attempt-1"), "outcome": {"S": "delivered"}}}},
            set_n("c", 2, condition="attribute_exists(n)"),
        ]
    )
    assert item(dynamodb, "c", "attempt-1") == {**key("c", "attempt-1"), "outcome": {"S": "delivered"}}
    assert item(dynamodb, "c") == {**key("c"), "n": {"N": "2"}}


def test_a_query_on_the_tables_key_reads_its_partition_in_order_and_pages(dynamodb: Any) -> None:
    for pk, sk in [("p1", "a3"), ("p1", "a1"), ("p1", "b1"), ("p1", "a2"), ("p2", "a1"), ("p1", "a4")]:
        dynamodb.put_item(TableName=TABLE, Item=key(pk, sk))
    query = {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :a)",
        "ExpressionAttributeValues": {":pk": {"S": "p1"}, ":a": {"S": "a"}},
        "Limit": 3,
    }
    first = dynamodb.query(**query)
    rest = dynamodb.query(**query, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["sk"]["S"] for i in first["Items"] + rest["Items"]] == ["a1", "a2", "a3", "a4"]
    backwards = dynamodb.query(**{**query, "Limit": 10}, ScanIndexForward=False)
    assert [i["sk"]["S"] for i in backwards["Items"]] == ["a4", "a3", "a2", "a1"]
    scanned = dynamodb.scan(TableName=TABLE)["Count"]
    nothing = dynamodb.query(**{**query, "ExpressionAttributeValues": {":pk": {"S": "p9"}, ":a": {"S": "a"}}})
    assert nothing["Items"] == [] and dynamodb.scan(TableName=TABLE)["Count"] == scanned


def test_a_query_on_an_index_finds_its_items_across_partitions_oldest_first(dynamodb: Any) -> None:
    rows = [("q1", "x", "waiting", "09:00"), ("q2", "x", "waiting", "08:00"), ("q2", "y", "sent", "07:00")]
    rows += [("q3", "x", "waiting", "10:00"), ("q4", "x", "waiting", "08:30")]
    for pk, sk, queue, since in rows:
        dynamodb.put_item(TableName=TABLE, Item={**key(pk, sk), "queue": {"S": queue}, "since": {"S": since}})
    query = {
        "TableName": TABLE,
        "IndexName": "by_queue",
        "KeyConditionExpression": "#q = :w",
        "ExpressionAttributeNames": {"#q": "queue"},
        "ExpressionAttributeValues": {":w": {"S": "waiting"}},
        "Limit": 2,
    }
    first = dynamodb.query(**query)
    rest = dynamodb.query(**query, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["since"]["S"] for i in first["Items"] + rest["Items"]] == ["08:00", "08:30", "09:00", "10:00"]
