"""The one sample order (the seed's shape, without `order.id`): the tests, the benchmarks and the local stack's
demo all start from it, so a change to the order schema is made once."""

from __future__ import annotations

import copy
from typing import Any

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


def order_body(seller_id: str = "s-1", user_id: str = "u-1", **order: Any) -> dict[str, Any]:
    """A fresh copy of the sample create body, with the given seller, user and `order` fields."""
    body = copy.deepcopy(SAMPLE_ORDER)
    body["seller"]["id"] = seller_id
    body["user"]["id"] = user_id
    body["order"].update(order)
    return body
