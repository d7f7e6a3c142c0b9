"""Live tracking in the local stack: the fan-out function fed as SNS would feed it in AWS.

In AWS the `push_tracking` function is subscribed to the notifications topic with the filter `audience=customer`.
moto cannot invoke our code, so a queue takes that subscription (same filter) and each message is handed to the
function as the SNS event Lambda would get. Tests use `forward_notifications` on the same queue.
"""

from __future__ import annotations

import json
import threading
from typing import Any

FILTER_POLICY = {"audience": ["customer"]}
HANDLER = "push_tracking"


def subscribe_queue(sqs: Any, sns: Any, topic_arn: str, name: str = "local-tracking") -> str:
    """A queue subscribed to the topic with the fan-out's filter policy; returns its URL."""
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps(FILTER_POLICY)},
    )
    return url


def sns_event(envelope: dict[str, Any]) -> dict[str, Any]:
    """The Lambda event for one SNS message, from the envelope an SQS subscriber received."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{envelope.get('TopicArn', '')}:local",
                "Sns": {"Subject": None, "MessageAttributes": {}, **envelope},
            }
        ]
    }


def forward_notifications(app: Any, sqs: Any, url: str, wait_seconds: int = 0) -> int:
    """Hand what the queue holds to the fan-out, one invocation per message, in order; returns how many."""
    from tools.poller import lambda_context

    handled = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds).get(
            "Messages", []
        )
        if not messages:
            return handled
        for message in messages:
            app.handler_map[HANDLER](sns_event(json.loads(message["Body"])), lambda_context(HANDLER))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1
        if wait_seconds:
            return handled


def run_fanout(app: Any, topic_arn: str, stop: threading.Event, on_error: Any) -> None:
    """The local stack's subscription: long-polls the queue and runs the fan-out for each message."""
    import boto3

    sqs = boto3.client("sqs")
    url = subscribe_queue(sqs, boto3.client("sns"), topic_arn)

    def loop() -> None:
        while not stop.is_set():
            try:
                forward_notifications(app, sqs, url, wait_seconds=1)
            except Exception as exc:  # noqa: BLE001 - keep the stack up, say what happened
                on_error(exc)
                stop.wait(1)

    threading.Thread(target=loop, name="tracking-fanout", daemon=True).start()
