"""The single description of every AWS resource order-relay needs.

`template(stage)` is the CloudFormation that deploys them (merged into `chalice package` output); `provision()`
creates the very same resources, translated from that template, in moto for the tests and the local stack.
Table schemas are derived from the pynamodb models, so code, template and tests cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from secrets import token_urlsafe
from typing import Any

from pynamodb.attributes import TTLAttribute
from pynamodb.models import Model

from chalicelib.db.records import AttemptRecord, DeliveryRecord, IntegratorRecord, OrderRecord, TokenRecord
from chalicelib.tracking.store import TrackingRecord

DISPATCHER_TIMEOUT_SECONDS = 60
VISIBILITY_TIMEOUT_SECONDS = 6 * DISPATCHER_TIMEOUT_SECONDS  # AWS's advice for SQS-triggered functions
MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class ResourceNames:
    stage: str

    @property
    def prefix(self) -> str:
        return f"order-relay-{self.stage}"

    def table(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    @property
    def queue(self) -> str:
        return f"{self.prefix}-orders"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}-orders-dlq"

    @property
    def topic(self) -> str:
        return f"{self.prefix}-notifications"

    @property
    def secrets_prefix(self) -> str:
        return f"order-relay/{self.stage}"

    @property
    def admin_token_secret(self) -> str:
        return f"{self.secrets_prefix}/admin-token"

    @property
    def tracking_link_secret(self) -> str:
        return f"{self.secrets_prefix}/tracking-links"


# logical id -> (table kind, env var the service reads, pynamodb models stored in it)
TABLES: dict[str, tuple[str, str, tuple[type[Model], ...]]] = {
    "OrdersTable": ("orders", "ORDERS_TABLE", (OrderRecord,)),
    "TokensTable": ("tokens", "TOKENS_TABLE", (TokenRecord,)),
    "IntegratorsTable": ("integrators", "INTEGRATORS_TABLE", (IntegratorRecord,)),
    "DeliveriesTable": ("deliveries", "DELIVERIES_TABLE", (DeliveryRecord, AttemptRecord)),
    "IdempotencyTable": ("idempotency", "IDEMPOTENCY_TABLE", ()),
    "TrackingTable": ("tracking", "TRACKING_TABLE", (TrackingRecord,)),
}
# Powertools' DynamoDBPersistenceLayer defaults: partition key `id`, TTL attribute `expiration`.
IDEMPOTENCY_SCHEMA = {
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "ttl": "expiration",
}


def _table_properties(name: str, models: tuple[type[Model], ...]) -> dict[str, Any]:
    if not models:
        indexes: list[Any]
        definitions, keys, indexes, ttl = (
            IDEMPOTENCY_SCHEMA["AttributeDefinitions"],
            IDEMPOTENCY_SCHEMA["KeySchema"],
            [],
            IDEMPOTENCY_SCHEMA["ttl"],
        )
    else:
        definitions, keys, indexes, ttl = [], [], [], None
        for model in models:
            schema = model._get_schema()
            definitions += [d for d in schema["attribute_definitions"] if d not in definitions]
            keys = keys or schema["key_schema"]
            indexes += [
                {"IndexName": i["index_name"], "KeySchema": i["key_schema"], "Projection": i["projection"]}
                for i in schema["global_secondary_indexes"]
            ]
            ttl = ttl or next(
                (a.attr_name for a in model.get_attributes().values() if isinstance(a, TTLAttribute)), None
            )
    properties: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": definitions,
        "KeySchema": keys,
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    if indexes:
        properties["GlobalSecondaryIndexes"] = indexes
    if ttl:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    return properties


def _alarm(name: str, description: str, metric: dict[str, Any], threshold: float = 0) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": description,
            **metric,
            "Statistic": metric.get("Statistic", "Sum"),
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "NotificationsAlarmTopic"}],
        },
    }


def template(stage: str) -> dict[str, Any]:
    names = ResourceNames(stage)
    resources: dict[str, Any] = {
        logical: {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": _table_properties(names.table(kind), models),
        }
        for logical, (kind, _, models) in TABLES.items()
    }
    resources["OrdersDeadLetterQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": names.dead_letter_queue,
            "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
        },
    }
    resources["OrdersQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": names.queue,
            "VisibilityTimeout": VISIBILITY_TIMEOUT_SECONDS,
            "MessageRetentionPeriod": 4 * 24 * 3600,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["OrdersDeadLetterQueue", "Arn"]},
                "maxReceiveCount": MAX_RECEIVE_COUNT,
            },
        },
    }
    resources["NotificationsTopic"] = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": names.topic}}
    resources["AdminTokenSecret"] = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "Name": names.admin_token_secret,
            "Description": "Bootstrap admin bearer token of order-relay: issue real tokens with it, then rotate it",
            "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True},
        },
    }
    resources["TrackingLinkSecret"] = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "Name": names.tracking_link_secret,
            "Description": "Keys of customers' tracking links (first signs, all verify): docs/live-tracking.md",
            "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True},
        },
    }
    resources["NotificationsAlarmTopic"] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": f"{names.prefix}-alarms"},
    }
    dispatcher = {
        "Namespace": "AWS/Lambda",
        "Dimensions": [{"Name": "FunctionName", "Value": f"{names.prefix}-dispatch_orders"}],
    }
    resources.update(
        {
            "DeadLetterQueueAlarm": _alarm(
                f"{names.prefix}-dlq-not-empty",
                "Orders-queue messages reached the dead-letter queue",
                {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Statistic": "Maximum",
                    "Dimensions": [{"Name": "QueueName", "Value": names.dead_letter_queue}],
                },
            ),
            "DeliveryFailuresAlarm": _alarm(
                f"{names.prefix}-delivery-failures",
                "Deliveries marked failed after every retry",
                {
                    "Namespace": "OrderRelay",
                    "MetricName": "DeliveryFailed",
                    "Dimensions": [{"Name": "service", "Value": "order-relay"}],
                },
                threshold=5,
            ),
            "DispatcherErrorsAlarm": _alarm(
                f"{names.prefix}-dispatcher-errors",
                "Dispatcher invocations failed",
                {**dispatcher, "MetricName": "Errors"},
            ),
            "DispatcherThrottlesAlarm": _alarm(
                f"{names.prefix}-dispatcher-throttles",
                "Dispatcher was throttled",
                {**dispatcher, "MetricName": "Throttles"},
            ),
            "TrackingErrorsAlarm": _alarm(
                f"{names.prefix}-tracking-errors",
                "Live tracking's fan-out failed (pages stop moving until the next change)",
                {
                    "Namespace": "AWS/Lambda",
                    "MetricName": "Errors",
                    "Dimensions": [{"Name": "FunctionName", "Value": f"{names.prefix}-push_tracking"}],
                },
            ),
            "Api5xxAlarm": _alarm(
                f"{names.prefix}-api-5xx",
                "The API answered 5xx",
                {
                    "Namespace": "AWS/ApiGateway",
                    "MetricName": "5XXError",
                    "Dimensions": [{"Name": "ApiName", "Value": "order-relay"}],
                },
            ),
        }
    )
    outputs = {
        **{f"{logical}Name": {"Value": {"Ref": logical}} for logical in TABLES},
        "OrdersQueueUrl": {"Value": {"Ref": "OrdersQueue"}},
        "OrdersQueueArn": {"Value": {"Fn::GetAtt": ["OrdersQueue", "Arn"]}},
        "OrdersDeadLetterQueueUrl": {"Value": {"Ref": "OrdersDeadLetterQueue"}},
        "NotificationsTopicArn": {"Value": {"Ref": "NotificationsTopic"}},
        "AdminTokenSecretArn": {"Value": {"Ref": "AdminTokenSecret"}},
        "TrackingLinkSecretArn": {"Value": {"Ref": "TrackingLinkSecret"}},
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"order-relay ({stage}): tables, queues, topic and alarms",
        "Resources": resources,
        "Outputs": outputs,
    }


def service_environment(stage: str, queue_url: str, topic_arn: str) -> dict[str, str]:
    """The variables the service reads (chalicelib.settings) for the resources of `stage`."""
    names = ResourceNames(stage)
    env = {var: names.table(kind) for kind, var, _ in TABLES.values()}
    env.update(
        ORDER_RELAY_ADMIN_TOKEN_SECRET=names.admin_token_secret,
        TRACKING_LINK_SECRET=names.tracking_link_secret,
        ORDERS_QUEUE_URL=queue_url,
        ORDERS_QUEUE_NAME=names.queue,
        NOTIFICATIONS_TOPIC_ARN=topic_arn,
        SECRETS_PREFIX=names.secrets_prefix,
    )
    return env


# --- moto ------------------------------------------------------------------------------------------------------


def provision(stage: str, *, region: str, endpoint_url: str | None = None) -> dict[str, str]:
    """Create every resource of `template(stage)` (alarms excepted: moto does not evaluate them) and return the
    service environment. Safe to call again on existing resources."""
    import boto3

    session = boto3.session.Session(region_name=region)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    sns = session.client("sns", endpoint_url=endpoint_url)
    resources = template(stage)["Resources"]
    existing = set(dynamodb.list_tables()["TableNames"])
    for resource in resources.values():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        props = resource["Properties"]
        if props["TableName"] not in existing:
            create = {
                k: v
                for k, v in props.items()
                if k in ("TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
            }
            dynamodb.create_table(**create)
        if "TimeToLiveSpecification" in props:
            dynamodb.update_time_to_live(
                TableName=props["TableName"], TimeToLiveSpecification=props["TimeToLiveSpecification"]
            )
    dlq = resources["OrdersDeadLetterQueue"]["Properties"]
    dlq_url = sqs.create_queue(
        QueueName=dlq["QueueName"], Attributes={"MessageRetentionPeriod": str(dlq["MessageRetentionPeriod"])}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = resources["OrdersQueue"]["Properties"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue["RedrivePolicy"]["maxReceiveCount"])}
    queue_url = sqs.create_queue(
        QueueName=queue["QueueName"],
        Attributes={
            "VisibilityTimeout": str(queue["VisibilityTimeout"]),
            "MessageRetentionPeriod": str(queue["MessageRetentionPeriod"]),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    secrets = session.client("secretsmanager", endpoint_url=endpoint_url)
    admin = resources["AdminTokenSecret"]["Properties"]
    if not secrets.list_secrets(Filters=[{"Key": "name", "Values": [admin["Name"]]}])["SecretList"]:
        secrets.create_secret(
            Name=admin["Name"], SecretString=token_urlsafe(admin["GenerateSecretString"]["PasswordLength"])
        )
    tracking = resources["TrackingLinkSecret"]["Properties"]
    if not secrets.list_secrets(Filters=[{"Key": "name", "Values": [tracking["Name"]]}])["SecretList"]:
        secrets.create_secret(
            Name=tracking["Name"], SecretString=token_urlsafe(tracking["GenerateSecretString"]["PasswordLength"])
        )
    topic_arn = sns.create_topic(Name=resources["NotificationsTopic"]["Properties"]["TopicName"])["TopicArn"]
    return service_environment(stage, queue_url, topic_arn)
