"""What a fuzzer and a hostile partner found (issue 11), each through the public surface: hostile numbers and
URLs, unexpected faults, oversized callbacks, secret rotation races, callback URLs on reads, integrators that
trickle or flood their answers, and every spelling of an internal address."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.db.concurrency import StaleWrite
from tests.functional.test_callbacks import Partner
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator, Huge, Trickle
from tests.support.logs import captured_logs
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
INTEGRATORS = "/api/v1/integrators"
PUBLIC_ADDRESS = "93.184.216.34"


@pytest.fixture
def fake() -> Iterator[FakeIntegrator]:
    with FakeIntegrator() as server:
        yield server


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names the resolver knows (name -> address); no network is needed and nothing else resolves."""
    table: dict[str, str] = {}

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = table[host]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


def register(api: Api, name: str, url: str, **extra: Any) -> Any:
    return api.post(INTEGRATORS, {"name": name, "url": url, "auth": {"type": "none"}, **extra})


def secret_names(prefix: str) -> list[str]:
    manager = boto3.client("secretsmanager", region_name="us-east-1")
    listed = manager.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}], IncludePlannedDeletion=False)
    return sorted(s["Name"] for s in listed["SecretList"] if "DeletedDate" not in s)


# --- numbers and URLs that reached DynamoDB ----------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["5e-324", "0.0000001", "0", "-1", "31", "1e309"])
def test_timeouts_that_are_not_sensible_are_refused_and_nothing_breaks(
    api: Api, fake: FakeIntegrator, timeout: str
) -> None:
    assert register(api, "p", fake.url("/p")).status_code == 201
    response = api.patch(f"{INTEGRATORS}/p", raw=f'{{"timeout_seconds": {timeout}}}'.encode())
    assert response.status_code == 422, response.body
    assert response.json_body["error"]["details"][0]["field"] == "timeout_seconds"
    assert api.get(INTEGRATORS).status_code == 200
    assert api.get(f"{INTEGRATORS}/p").json_body["timeout_seconds"] == 5.0
    assert api.delete(f"{INTEGRATORS}/p").status_code == 204


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_malformed(api: Api, fake: FakeIntegrator, constant: str) -> None:
    assert register(api, "p", fake.url("/p")).status_code == 201
    response = api.patch(f"{INTEGRATORS}/p", raw=f'{{"timeout_seconds": {constant}}}'.encode())
    assert response.status_code == 400 and response.json_body["error"]["code"] == "malformed_request"


def test_a_tenth_of_a_second_is_the_shortest_timeout(api: Api, fake: FakeIntegrator) -> None:
    assert register(api, "p", fake.url("/p"), timeout_seconds=0.1).status_code == 201


@pytest.mark.parametrize(
    "change",
    [
        {"events": ["order.created", "order.created"]},
        {"url": "http://127.0.0.1:9/o\x00rders"},
        {"url": "http://127.0.0.1:9/o rders"},
        {"url": "http://127.0.0.1:9/orders\n"},
        {"url": "http://user:pass@127.0.0.1:9/orders"},
        {"url": "http://127.0.0.1:99999/orders"},
        {"url": " http://127.0.0.1:9/orders"},
    ],
)
def test_duplicate_events_and_urls_with_control_characters_or_userinfo_are_refused(
    api: Api, change: dict[str, Any]
) -> None:
    response = api.post(INTEGRATORS, {"name": "p", "url": "http://127.0.0.1:9/o", "auth": {"type": "none"}, **change})
    assert response.status_code == 422, change
    assert api.get(INTEGRATORS).json_body["items"] == []


# --- the document says what the API accepts ---------------------------------------------------------------------


def test_the_openapi_document_states_the_constraints_the_api_enforces(api: Api) -> None:
    schemas = api.get("/api/v1/openapi.json", token="").json_body["components"]["schemas"]
    create = schemas["CreateIntegratorRequest"]["properties"]
    assert create["name"]["pattern"] and create["url"]["pattern"] and create["url"]["maxLength"] == 2048
    assert create["timeout_seconds"]["minimum"] == 0.1 and create["timeout_seconds"]["maximum"] == 30
    assert create["events"]["uniqueItems"] is True
    assert schemas["BearerAuth"]["properties"]["token"]["minLength"] == 8
    assert schemas["ApiKeyAuth"]["properties"]["key"]["minLength"] == 8
    assert schemas["HmacAuth"]["properties"]["secret"]["anyOf"][0]["pattern"].startswith("^whsec_")
    token = schemas["CreateTokenRequest"]
    assert token["properties"]["seller_id"]["anyOf"][0]["pattern"]
    # a seller token needs its seller, an admin token must not have one: stated as alternatives
    assert "oneOf" in token or "anyOf" in token


# --- unexpected faults answer the contract's shape --------------------------------------------------------------


def test_an_unexpected_fault_answers_the_error_shape_with_the_correlation_id_and_logs_the_trace(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.db import orders as order_store

    order_id = api.post(ORDERS, order_body()).json_body["id"]

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(order_store, "get", broken)
    with captured_logs() as logs:
        response = api.get(f"{ORDERS}/{order_id}", headers={"X-Correlation-Id": "corr-42"})
    assert response.status_code == 500
    assert response.json_body == {
        "error": {
            "code": "internal_error",
            "message": response.json_body["error"]["message"],
            "details": [],
            "correlation_id": "corr-42",
        }
    }
    assert "disk on fire" not in json.dumps(response.json_body)
    logged = logs.getvalue()
    assert "Traceback" in logged and "disk on fire" in logged and "corr-42" in logged


# --- callbacks over the size limit ------------------------------------------------------------------------------


def test_a_callback_body_over_the_limit_is_413(api: Api, fake: FakeIntegrator) -> None:
    partner = Partner(api, "courier", fake)
    response = partner.post({"order_id": "ord_x", "status": "accepted", "message": "x" * (70 * 1024)})
    assert response.status_code == 413 and response.json_body["error"]["code"] == "payload_too_large"


# --- secrets: rotation races, concurrent registration, re-registration ----------------------------------------


def test_a_rotation_that_loses_its_conditional_write_leaves_the_current_secret_working(
    api: Api, fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.db import integrators as store

    partner = Partner(api, "courier", fake)
    before = secret_names("order-relay/test/integrators/courier/")

    def stale(*_args: Any, **_kwargs: Any) -> None:
        raise StaleWrite("integrator courier")

    with monkeypatch.context() as patch:
        patch.setattr(store, "replace", stale)
        response = api.patch(f"{INTEGRATORS}/courier", {"rotate_callback_secret": True})
    assert response.status_code == 409
    assert secret_names("order-relay/test/integrators/courier/") == before
    # The 409 changed nothing: after a real rotation the integrator's secret is still the previous one, valid
    # until the next rotation (the lost rotation's secret never became "previous"). Unknown order: 404, not 401.
    rotated = api.patch(f"{INTEGRATORS}/courier", {"rotate_callback_secret": True})
    assert rotated.status_code == 200
    assert partner.status("ord_unknown", "accepted").status_code == 404
    assert len(secret_names("order-relay/test/integrators/courier/")) == 1


def test_concurrent_registrations_of_one_name_keep_the_winners_secret(
    api: Api, fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.db import integrators as store

    monkeypatch.setattr(store, "get", lambda _name: None)  # both requests pass the early existence check
    winner = register(api, "courier", fake.url("/c"))
    loser = register(api, "courier", fake.url("/c"))
    assert winner.status_code == 201 and loser.status_code == 409
    monkeypatch.undo()
    partner = Partner.__new__(Partner)
    partner.api, partner.name, partner.secret = api, "courier", winner.json_body["callback_secret"]
    partner.path, partner.sent = "/api/v1/callbacks/courier", 0
    assert partner.status("ord_unknown", "accepted").status_code == 404
    assert len(secret_names("order-relay/test/integrators/courier/")) == 1


def test_a_deleted_integrator_can_be_registered_again_at_once(api: Api, fake: FakeIntegrator) -> None:
    assert register(api, "courier", fake.url("/c")).status_code == 201
    assert api.delete(f"{INTEGRATORS}/courier").status_code == 204
    again = register(api, "courier", fake.url("/c"))
    assert again.status_code == 201, again.body
    assert api.get(f"{INTEGRATORS}/courier").status_code == 200


def test_reads_answer_the_same_callback_url_as_creation(api: Api, fake: FakeIntegrator, configure: Any) -> None:
    configure(PUBLIC_BASE_URL=None)
    created = register(api, "courier", fake.url("/c")).json_body["callback_url"]
    assert created.startswith("http") and created.endswith("/api/v1/callbacks/courier")
    assert api.get(f"{INTEGRATORS}/courier").json_body["callback_url"] == created
    assert api.get(INTEGRATORS).json_body["items"][0]["callback_url"] == created
    assert api.patch(f"{INTEGRATORS}/courier", {"enabled": True}).json_body["callback_url"] == created


# --- integrators that trickle or flood --------------------------------------------------------------------------


def dispatch_one(api: Api, app: Any, aws: dict[str, str]) -> tuple[str, float]:
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    started = time.monotonic()
    drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])
    return order_id, time.monotonic() - started


def delivery(api: Api, order_id: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in api.get(f"{ORDERS}/{order_id}").json_body["deliveries"] if d["integrator"] == name]
    return dict(found)


def test_a_trickling_answer_ends_at_the_calls_total_deadline(
    api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any
) -> None:
    configure(DISPATCH_CONNECT_TIMEOUT="0.5")
    fake.default("/slow", Trickle(interval=0.2, length=200))  # 40 s in all, each byte inside the read timeout
    assert register(api, "slow", fake.url("/slow"), timeout_seconds=1).status_code == 201
    order_id, took = dispatch_one(api, app, aws)
    assert took < 15  # 1.5 s for the call, the rest is moto on a busy machine; unbounded it is 40 s
    state = delivery(api, order_id, "slow")
    assert state["status"] != "delivered" and "timed out" in (state["last_error"] or ""), api.get(
        f"{ORDERS}/{order_id}/deliveries"
    ).json_body


def test_a_huge_answer_is_read_only_up_to_the_cap(
    api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.default("/big", Huge(size=200 * 1024 * 1024))
    assert register(api, "big", fake.url("/big"), timeout_seconds=5).status_code == 201
    order_id, _ = dispatch_one(api, app, aws)
    state = delivery(api, order_id, "big")
    assert state["status"] == "delivered" and state["response"] is None
    assert fake.streamed_bytes < 32 * 1024 * 1024  # the reader stopped at 64 KiB; socket buffers took the rest


# --- internal addresses in every spelling, at registration and at call time --------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://0/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:a9fe:a9fe]/",
        "https://[fd00::1]/",
        "https://[fe80::1]/",
        "https://100.64.0.1/",
        "https://169.254.169.254./",
        "https://LOCALHOST./",
        "https://internal.partner.example/",
        "https://metadata.partner.example/",
        "https://v6.partner.example/",
    ],
)
def test_internal_addresses_are_refused_in_every_spelling(
    api: Api, configure: Any, dns: dict[str, str], url: str
) -> None:
    configure(ALLOW_LOOPBACK_INTEGRATORS="false")
    dns.update(
        {
            "internal.partner.example": "10.0.0.1",
            "metadata.partner.example": "169.254.169.254",
            "v6.partner.example": "fd12::1",
        }
    )
    response = register(api, "p", url)
    assert response.status_code == 422, url
    oauth = {"type": "oauth2_client_credentials", "token_url": url, "client_id": "c", "client_secret": "s" * 12}
    refused = api.post(INTEGRATORS, {"name": "p", "url": "https://[2606:4700::1]/", "auth": oauth})
    assert refused.status_code == 422, url


def test_a_name_that_turns_internal_after_registration_is_refused_when_called(
    api: Api, app: Any, aws: dict[str, str], configure: Any, dns: dict[str, str]
) -> None:
    configure(ALLOW_LOOPBACK_INTEGRATORS="false")
    dns["partner.example"] = PUBLIC_ADDRESS
    assert register(api, "p", "https://partner.example/orders").status_code == 201
    dns["partner.example"] = "169.254.169.254"  # DNS rebinding
    order_id, _ = dispatch_one(api, app, aws)
    state = delivery(api, order_id, "p")
    assert state["status"] == "failed" and "internal address" in state["last_error"]


def test_public_names_register_and_local_stack_names_need_the_flag(
    api: Api, configure: Any, dns: dict[str, str], fake: FakeIntegrator
) -> None:
    configure(ALLOW_LOOPBACK_INTEGRATORS="false")
    dns["partner.example"] = PUBLIC_ADDRESS
    assert register(api, "p", "https://partner.example/orders").status_code == 201
    assert register(api, "q", fake.url("/q").replace("http://", "https://")).status_code == 422
