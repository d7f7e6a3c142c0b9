"""The one sample order (the seed's shape, without `order.id`). The tests, the benchmarks and the local stack's demo
start from it (through `tools.sample_order`), and the service checks payload templates and previews against it,
so a change to the order schema is made once."""

from __future__ import annotations

import copy
from typing import Any

from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus

SAMPLE_ORDER_ID = "ord_SAMPLE"
SAMPLE_ORDER: dict[str, Any] = {
    "user": {
        "id": "u-1",
        "phone": "+962790000000",
        "name": "Lina",
        "email": "lina@example.com",
        "lat": 31.95,
        "lng": 35.91,
    },
    "seller": {
        "id": "s-1",
        "phone": "+962780000000",
        "name": "Falafel House",
        "email": "shop@example.com",
        "lat": 31.96,
        "lng": 35.92,
    },
    "order": {
        "datetime": "2026-11-24T10:00:00+02:00",
        "timezone": "Asia/Amman",
        "user_note": "no onions",
        "items": [{"id": "i-1", "name": "Falafel wrap", "quantity": 2}],
    },
}


def sample_order() -> Order:
    """The sample as a stored order would be: what a template is tried on before it is saved."""
    body = copy.deepcopy(SAMPLE_ORDER)
    stamp = "2026-11-24T08:00:00.000Z"
    return Order(
        id=SAMPLE_ORDER_ID,
        status=OrderStatus.PENDING,
        version=1,
        created_at=stamp,
        updated_at=stamp,
        user=body["user"],
        seller=body["seller"],
        details=body["order"],
    )
