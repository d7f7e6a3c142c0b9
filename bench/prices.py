"""Dollars per million orders from the measured requests, item sizes and durations, at on-demand list prices.

Prices: AWS us-east-1 list prices as published on the services' pricing pages in 2025 (DynamoDB on-demand after
the 50 % cut of 1 November 2024), free tiers left out. Not re-checked when this runs: the machine has no network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICES_AS_OF = "2025 (AWS pricing pages, us-east-1, on-demand, free tiers left out)"
API_GATEWAY_REST_PER_M = 3.50  # first 333 million requests a month
LAMBDA_REQUEST_PER_M = 0.20
LAMBDA_GB_SECOND = 0.0000166667  # x86
DYNAMODB_WRU_PER_M = 0.625  # write request unit: 1 KB
DYNAMODB_RRU_PER_M = 0.125  # read request unit: 4 KB strongly consistent
SQS_PER_M = 0.40  # standard queue, per 64 KB chunk
SNS_PUBLISH_PER_M = 0.50
SECRETS_PER_M = 5.00  # $0.05 per 10,000 API calls
# Index write units of one order's life (issue 22's layout): its entry in by_shard, by_seller_keys and
# by_user_keys at create (keys and parties, which never change: a status move writes no index) and one
# by_integrator entry per delivery row (the portal's list; 3 integrators). A create's event is queued before its
# order is written, so the outbox index is written only when that send fails. Each entry is well under 1 KB.
ORDER_INDEX_UNITS_PER_LIFE = 6


@dataclass(frozen=True)
class Usage:
    """AWS usage of one order's life."""

    api_requests: int
    lambda_invocations: float
    gb_seconds: float
    order_writes: int
    delivery_writes: int
    other_writes: int
    reads: int
    sqs: float
    sns: int
    secrets: float


@dataclass(frozen=True)
class Bill:
    lines: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.lines.values())


def write_units(kb: float) -> int:
    return max(1, math.ceil(kb))


def bill(usage: Usage, sizes: dict[str, float], *, measured_write_units: float | None = None) -> Bill:
    """Dollars per million orders. DynamoDB writes are the write units the partition-heat run counted, item by item
    and index by index, when it ran (`measured_write_units`, per order); else this model of them."""
    wru = (
        measured_write_units
        if measured_write_units is not None
        else usage.order_writes * write_units(sizes["orders"])
        + ORDER_INDEX_UNITS_PER_LIFE
        + usage.delivery_writes * write_units(sizes["deliveries"])
        + usage.other_writes * write_units(sizes["idempotency"])
    )
    return Bill(
        {
            "API Gateway (REST)": usage.api_requests * API_GATEWAY_REST_PER_M,
            "Lambda requests": usage.lambda_invocations * LAMBDA_REQUEST_PER_M,
            "Lambda GB-seconds": usage.gb_seconds * LAMBDA_GB_SECOND * 1e6,
            "DynamoDB writes": wru * DYNAMODB_WRU_PER_M,
            "DynamoDB reads": usage.reads * DYNAMODB_RRU_PER_M,
            "SQS": usage.sqs * SQS_PER_M,
            "SNS publishes": usage.sns * SNS_PUBLISH_PER_M,
            "Secrets Manager": usage.secrets * SECRETS_PER_M,
        }
    )


# API Gateway WebSocket APIs: messages (sent and received, in 32 KB units) and connection minutes.
WEBSOCKET_MESSAGES_PER_M = 1.00  # first billion a month
WEBSOCKET_CONNECTION_MINUTES_PER_M = 0.25
