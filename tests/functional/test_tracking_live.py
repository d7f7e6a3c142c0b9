"""Live tracking without a browser: the local WebSocket API calls the app's handlers with API Gateway's events,
the fan-out is fed from the notifications topic through the `audience=customer` filter, and plain WebSocket
clients stand in for pages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.functional.test_callbacks import Partner
from tests.functional.test_tracking import token_of
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator
from tests.support.waiting import eventually
from tools.local_tracking import forward_notifications, subscribe_queue
from tools.local_websocket import LocalWebsocketApi
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"


@pytest.fixture
def gateway(app: Any, configure: Any) -> Iterator[LocalWebsocketApi]:
    from chalicelib.tracking.fanout import reset_client

    errors: list[str] = []
    server = LocalWebsocketApi(app, on_error=lambda route, exc: errors.append(f"{route}: {exc!r}")).start()
    configure(TRACKING_WEBSOCKET_URL=server.websocket_url, TRACKING_MANAGEMENT_URL=server.management_url)
    reset_client()
    yield server
    server.stop()
    reset_client()
    assert not errors, errors


@pytest.fixture
def fanout(app: Any, aws: dict[str, str]) -> Any:
    """Runs the fan-out for everything published so far, as the topic's filtered subscription would."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = subscribe_queue(sqs, boto3.client("sns", region_name="us-east-1"), aws["NOTIFICATIONS_TOPIC_ARN"])
    return lambda: forward_notifications(app, sqs, url)


@pytest.fixture
def flow(api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator) -> Any:
    """Create orders and move them as a partner would."""
    partner = Partner(api, "courier", fake)

    class Flow:
        def create(self) -> tuple[str, str]:
            created = api.post(ORDERS, order_body()).json_body
            return created["id"], token_of(created["tracking_url"])

        def dispatch(self) -> None:
            drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])

        def move(self, order_id: str, status: str) -> None:
            assert partner.status(order_id, status).status_code == 200

    return Flow()


def watch(gateway: LocalWebsocketApi, token: str) -> ClientConnection:
    return connect(f"{gateway.websocket_url}?token={token}", open_timeout=10)


def frames(socket: ClientConnection, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    return [json.loads(socket.recv(timeout=timeout)) for _ in range(count)]


def nothing_more(socket: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        socket.recv(timeout=0.3)


def test_a_hundred_watchers_each_get_every_change_once_and_in_order(
    gateway: LocalWebsocketApi, fanout: Any, flow: Any
) -> None:
    order_id, token = flow.create()
    sockets = [watch(gateway, token) for _ in range(100)]
    flow.dispatch()
    fanout()
    for status in ("accepted", "preparing", "picked_up", "delivered"):
        flow.move(order_id, status)
        fanout()
    received: dict[int, list[tuple[int, str]]] = {}

    def read(n: int) -> None:
        received[n] = [(f["seq"], f["order"]["status"]) for f in frames(sockets[n], 5)]
        nothing_more(sockets[n])

    readers = [threading.Thread(target=read, args=(n,)) for n in range(100)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(30)
    expected = [(2, "dispatched"), (3, "accepted"), (4, "preparing"), (5, "picked_up"), (6, "delivered")]
    assert len(received) == 100 and all(got == expected for got in received.values())
    for socket in sockets:
        socket.close()


def test_a_watcher_of_one_order_never_receives_another(gateway: LocalWebsocketApi, fanout: Any, flow: Any) -> None:
    a, token_a = flow.create()
    b, token_b = flow.create()
    with watch(gateway, token_a) as page_a, watch(gateway, token_b) as page_b:
        flow.dispatch()
        fanout()
        flow.move(b, "accepted")
        fanout()
        assert [f["order"]["reference"] for f in frames(page_a, 1)] == [a]
        assert [f["order"]["reference"] for f in frames(page_b, 2)] == [b, b]
        nothing_more(page_a)


@pytest.mark.parametrize("kind", ["forged", "other order's, altered", "revoked", "missing"])
def test_a_bad_link_is_refused_at_the_handshake(api: Api, gateway: LocalWebsocketApi, flow: Any, kind: str) -> None:
    order_id, token = flow.create()
    other, _ = flow.create()
    if kind == "revoked":
        api.post(f"{ORDERS}/{order_id}/tracking-links")
    bad = {
        "forged": token[:-3] + "xyz",
        "other order's, altered": token.replace(order_id, other),
        "revoked": token,
        "missing": "",
    }[kind]
    with pytest.raises(InvalidStatus) as refused:
        watch(gateway, bad)
    assert refused.value.response.status_code == 403
    assert gateway.connection_ids() == []


def test_gone_connections_are_cleaned_up_and_closed_pages_removed(
    gateway: LocalWebsocketApi, fanout: Any, flow: Any, aws: dict[str, str]
) -> None:
    from chalicelib.tracking import store
    from chalicelib.tracking.fanout import push_order

    order_id, token = flow.create()
    stays, leaves = watch(gateway, token), watch(gateway, token)
    assert len(list(store.watchers(order_id))) == 2
    leaves.close()  # $disconnect removes its row
    eventually(lambda: len(list(store.watchers(order_id))) == 1)
    store.add_watcher(order_id, "GoneConn0000=", link_issued_ms=1, until=2_000_000_000)  # a page that vanished
    flow.dispatch()
    fanout()
    assert frames(stays, 1)[0]["seq"] == 2
    assert [w.connection_id for w in store.watchers(order_id)] != ["GoneConn0000="]
    assert len(list(store.watchers(order_id))) == 1  # the 410 removed the vanished page's row
    result = push_order(order_id)
    assert (result.sent, result.gone) == (1, 0)
    stays.close()


def test_revoking_drops_open_pages_at_the_next_change(
    api: Api, gateway: LocalWebsocketApi, fanout: Any, flow: Any
) -> None:
    order_id, token = flow.create()
    page = watch(gateway, token)
    api.post(f"{ORDERS}/{order_id}/tracking-links")
    flow.dispatch()
    fanout()
    eventually(lambda: page.close_code is not None or _closed(page))
    assert gateway.connection_ids() == []


def test_a_frame_too_big_for_the_gateway_becomes_a_nudge_to_re_read() -> None:
    from chalicelib.tracking.fanout import MAX_FRAME_BYTES, frame_for

    class Huge:
        version = 7

        def model_dump(self, mode: str) -> dict[str, Any]:
            return {"note": "x" * MAX_FRAME_BYTES}

    assert json.loads(frame_for(Huge())) == {"type": "changed", "seq": 7}


def _closed(socket: ClientConnection) -> bool:
    try:
        socket.recv(timeout=0.1)
    except TimeoutError:
        return False
    except Exception:  # noqa: BLE001 - closed by the server
        return True
    return False
