"""Properties that hold for every input hypothesis can find, not only for the examples the other tests walk:
the lifecycle only moves forward, signatures bind id, timestamp and body, cursors stay inside the caller's
rows, and orders round-trip through storage while everything the schema refuses is a 4xx."""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.domain.order_status import ENDS, REPORTABLE, can_move, rank
from chalicelib.integrators.signing import SignatureError, generate_secret, signature_headers, verify
from chalicelib.orders.models import CreateOrderRequest
from tests.functional.test_callbacks import Partner
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
# Each example of the moto-backed properties is a few real requests: modest counts, no per-example deadline.
AGAINST_MOTO = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def fake() -> Iterator[FakeIntegrator]:
    with FakeIntegrator() as server:
        yield server


# --- the lifecycle ------------------------------------------------------------------------------------------------

STATUSES = st.sampled_from(sorted(REPORTABLE) + ["pending", "dispatched", "failed", "teleported", ""])


@given(sequence=st.lists(STATUSES, min_size=1, max_size=8))
@AGAINST_MOTO
def test_no_sequence_of_callbacks_moves_an_order_backwards_or_out_of_an_end_state(
    api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator, sequence: list[str]
) -> None:
    partner = getattr(fake, "partner", None) or Partner(api, "courier", fake)
    fake.partner = partner  # type: ignore[attr-defined]  # registered once per test, reused by every example
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])
    status = api.get(f"{ORDERS}/{order_id}").json_body["status"]
    assert status == "dispatched"
    for reported in sequence:
        answer = partner.status(order_id, reported)
        assert answer.status_code < 500, answer.body
        now = api.get(f"{ORDERS}/{order_id}").json_body["status"]
        if status in ENDS:
            assert now == status, (status, reported, now)
        else:
            assert now == status or can_move(status, now), (status, reported, now)
            assert rank(now) >= rank(status)
        assert now in (status, reported)
        status = now


# --- signatures ---------------------------------------------------------------------------------------------------


@given(
    msg_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    body=st.binary(max_size=512),
    other_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    other_body=st.binary(max_size=512),
    shift=st.integers(min_value=-200, max_value=200).filter(bool),
    what=st.sampled_from(["id", "timestamp", "body"]),
)
@settings(max_examples=300, deadline=None)
def test_any_change_to_the_id_timestamp_or_body_breaks_a_signature(
    msg_id: str, body: bytes, other_id: str, other_body: bytes, shift: int, what: str
) -> None:
    secret = generate_secret()
    now = int(time.time())
    headers = signature_headers(secret, msg_id, body, now=now)
    assert verify([secret], headers, body, now=now) == msg_id
    changed = dict(headers)
    if what == "id":
        assume(other_id != msg_id)
        changed["webhook-id"] = other_id
    elif what == "timestamp":
        changed["webhook-timestamp"] = str(now + shift)  # still inside the tolerance: only the signature refuses
    else:
        assume(other_body != body)
    with pytest.raises(SignatureError):
        verify([secret], changed, other_body if what == "body" else body, now=now)


# --- cursors ------------------------------------------------------------------------------------------------------


@pytest.fixture
def two_sellers(api: Api) -> dict[str, Any]:
    """Seven orders of s-1, five of s-2, and a token for s-1."""
    ids: dict[str, list[str]] = {"s-1": [], "s-2": []}
    for seller, count in (("s-1", 7), ("s-2", 5)):
        for n in range(count):
            ids[seller].append(api.post(ORDERS, order_body(seller_id=seller, user_id=f"u-{n}")).json_body["id"])
    token = api.post("/api/v1/tokens", {"role": "seller", "seller_id": "s-1"}).json_body["token"]
    return {"ids": ids, "seller": api.as_(token)}


def pages(api: Api, limit: int, query: str = "") -> list[list[dict[str, Any]]]:
    found, cursor = [], None
    for _ in range(20):
        suffix = f"&cursor={cursor}" if cursor else ""
        response = api.get(f"{ORDERS}?limit={limit}{query}{suffix}")
        assert response.status_code == 200, response.body
        found.append(response.json_body["items"])
        cursor = response.json_body["next_cursor"]
        if not cursor:
            return found
    raise AssertionError("paging did not end")


@given(limit=st.integers(min_value=1, max_value=8), status=st.sampled_from(["", "&status=pending"]))
@AGAINST_MOTO
def test_paging_a_sellers_orders_yields_exactly_its_own_rows(
    two_sellers: dict[str, Any], limit: int, status: str
) -> None:
    rows = [row for page in pages(two_sellers["seller"], limit, status) for row in page]
    assert sorted(row["id"] for row in rows) == sorted(two_sellers["ids"]["s-1"])
    assert {row["seller"]["id"] for row in rows} == {"s-1"}


def _recode(cursor: str, change: Any) -> str:
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    change(data)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@given(
    tamper=st.one_of(
        st.tuples(
            st.just("flip"), st.integers(min_value=0, max_value=400), st.characters(min_codepoint=33, max_codepoint=126)
        ),
        st.tuples(st.just("query"), st.sampled_from(["0" * 16, "by_seller_keys", ""]), st.just("")),
        st.tuples(st.just("position"), st.sampled_from([7, None, ["x"], "", "z" * 300]), st.just("")),
        st.tuples(st.just("junk"), st.integers(min_value=0, max_value=0), st.text(max_size=60)),
    )
)
@AGAINST_MOTO
def test_a_tampered_cursor_is_a_400_or_stays_inside_the_callers_rows(
    two_sellers: dict[str, Any], tamper: tuple[str, Any, str]
) -> None:
    seller = two_sellers["seller"]
    cursor = seller.get(f"{ORDERS}?limit=2").json_body["next_cursor"]
    kind, value, text = tamper
    if kind == "flip":
        position = value % len(cursor)
        assume(cursor[position] != text)
        forged = cursor[:position] + text + cursor[position + 1 :]
    elif kind == "query":  # the fingerprint of another query (another seller, filter or index)
        forged = _recode(cursor, lambda d: d.update(q=value))
    elif kind == "position":
        forged = _recode(cursor, lambda d: d.update(s=value))
    else:
        forged = text
    from urllib.parse import quote

    response = seller.get(f"{ORDERS}?limit=5&cursor={quote(forged, safe='')}")
    if kind in ("query", "position"):
        assert response.status_code == 400, response.body
    assert response.status_code in (200, 400), response.body
    if response.status_code == 200:
        assert {row["seller"]["id"] for row in response.json_body["items"]} <= {"s-1"}
    else:
        assert response.json_body["error"]["code"] == "malformed_request"


# --- orders through storage -----------------------------------------------------------------------------------------

IDENTIFIER = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}\Z")
NAME = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"]), min_size=1, max_size=40)
PARTY = st.fixed_dictionaries(
    {
        "id": IDENTIFIER,
        "name": NAME,
        "lat": st.floats(min_value=-90, max_value=90, allow_nan=False),
        "lng": st.floats(min_value=-180, max_value=180, allow_nan=False),
    },
    optional={
        "phone": st.from_regex(r"\A\+?[0-9]{3,15}\Z"),
        "email": st.from_regex(r"\A[a-z]{1,8}@[a-z]{1,8}\.[a-z]{2,4}\Z"),
    },
)
ITEM = st.fixed_dictionaries({"id": IDENTIFIER, "name": NAME, "quantity": st.integers(min_value=1, max_value=10_000)})
MOMENT = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from([UTC])
).map(lambda d: d.astimezone(UTC).isoformat())
ORDER = st.fixed_dictionaries(
    {
        "user": PARTY,
        "seller": PARTY,
        "order": st.fixed_dictionaries(
            {
                "datetime": MOMENT,
                "timezone": st.sampled_from(["Asia/Amman", "UTC", "America/Sao_Paulo", "Pacific/Chatham"]),
                "items": st.lists(ITEM, min_size=1, max_size=5),
            },
            optional={"user_note": st.text(max_size=100).map(str.strip)},
        ),
    }
)


@given(body=ORDER)
@AGAINST_MOTO
def test_any_valid_order_round_trips_through_storage_unchanged(api: Api, body: dict[str, Any]) -> None:
    expected = CreateOrderRequest.model_validate(body).model_dump(mode="json", exclude_none=True)
    created = api.post(ORDERS, body)
    assert created.status_code == 201, created.body
    fetched = api.get(f"{ORDERS}/{created.json_body['id']}").json_body
    for party in ("user", "seller"):
        assert {k: v for k, v in fetched[party].items() if v is not None} == expected[party]
    order = fetched["order"]
    assert order["items"] == expected["order"]["items"] and order["timezone"] == expected["order"]["timezone"]
    assert order["user_note"] == expected["order"].get("user_note", "")
    assert datetime.fromisoformat(order["datetime"]) == datetime.fromisoformat(expected["order"]["datetime"])


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@given(data=st.data())
@AGAINST_MOTO
def test_every_order_the_schema_refuses_is_a_4xx_and_every_other_is_created(api: Api, data: st.DataObject) -> None:
    body = copy.deepcopy(order_body())
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_paths(body)))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JUNK)
        if not _paths(body):
            break
    try:
        CreateOrderRequest.model_validate(body)
        valid = True
    except ValidationError:
        valid = False
    response = api.post(ORDERS, body)
    if valid:
        assert response.status_code == 201, (body, response.body)
    else:
        assert 400 <= response.status_code < 500, (body, response.body)
