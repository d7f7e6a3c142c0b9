"""docs/benchmarks.md must judge the measured life, not constants: the floor per step, the goal, and a
`TransactWriteItems` billed as writes (the delivery outcome with its attempt line), never as a read."""

from __future__ import annotations

from bench import report
from bench.aws_requests import AwsRequest
from bench.life import Life, Step


def _requests(*operations: tuple[str, str, str]) -> list[AwsRequest]:
    return [AwsRequest(service, operation, target) for service, operation, target in operations]


def _life(dispatch_requests: int) -> Life:
    dynamo = ("dynamodb", "GetItem", "t-orders")
    steps = [
        Step("create (POST /orders)", _requests(("dynamodb", "PutItem", "t-orders"), ("sqs", "SendMessage", "q"))),
        Step("authorizer (create (POST /orders))", _requests(("dynamodb", "GetItem", "t-tokens"))),
        Step(
            "dispatch: 1 order to 3 integrators (one SQS batch)",
            _requests(*[("dynamodb", "TransactWriteItems", "")] * 3, *[dynamo] * (dispatch_requests - 3)),
        ),
        Step("callback 1: a accepted (moves the order)", _requests(*[dynamo] * 4)),
        Step("callback 2: b accepted (kept on the delivery only)", _requests(*[dynamo] * 3)),
        Step("sweeper, idle (every minute, not per order)", _requests(*[dynamo] * 29)),
    ]
    return Life("warm", steps, {"orders": 1.2, "deliveries": 0.5, "idempotency": 0.0})


def test_floor_and_goal_come_from_the_measured_steps() -> None:
    life = _life(dispatch_requests=13)

    assert [report.floor_of(step) for step in life.steps] == [3, 1, 6, 2, 2, 1]
    assert report._per_life_floor(life) == 3 + 6 + 2 + 2  # authorizer and sweeper apart
    assert life.total() == 2 + 13 + 4 + 3
    assert [report.before_of(step) for step in life.steps] == [3, 1, 37, 9, 8, 1]


def test_transactions_are_billed_as_writes_not_reads() -> None:
    usage = report.usage_now(_life(dispatch_requests=3))

    assert usage.reads == 1 + 4 + 3  # the token and the callbacks' GetItems; the sweeper is not per order
    assert usage.delivery_writes == 3
    assert usage.other_writes == 9


def test_a_bench_run_keeps_the_hand_written_section_of_the_document() -> None:
    kept = f"{report.KEPT_HEADING}\n\nsoak: 2,000 of 2,000 delivered\n"
    old = "# Benchmarks\n\nold figures\n\n" + kept

    assert report.keep_hand_written(old, "# Benchmarks\n\nnew figures\n") == "# Benchmarks\n\nnew figures\n\n" + kept
    assert report.keep_hand_written(None, "# Benchmarks\n") == "# Benchmarks\n"
    assert report.keep_hand_written("# Benchmarks\n\nold figures\n", "new\n") == "new\n"
