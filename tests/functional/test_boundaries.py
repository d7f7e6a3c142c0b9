"""Issue 20 (outside security review), findings 7 and 9, through the public surface: JSON nested too deep on
every JSON route, IPv6 spellings of internal IPv4 addresses, tokens that expire, the bootstrap admin token
switched off, and integrator credentials that registration accepts but sending could not use."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain import clock
from tests.functional import test_hostile_numbers_urls_and_answers as hostile
from tests.functional.test_callbacks import Partner
from tests.support.api import ADMIN_TOKEN, Api
from tests.support.fake_integrator import FakeIntegrator
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
INTEGRATORS = "/api/v1/integrators"
TOKENS = "/api/v1/tokens"
dns = hostile.dns  # names the resolver knows, no network


@pytest.fixture
def fake() -> Any:
    with FakeIntegrator() as server:
        yield server


def hmac_secret(size: int) -> str:
    return "whsec_" + base64.b64encode(b"k" * size).decode()


# --- JSON nested too deep -----------------------------------------------------------------------------------------

DEEP_BODIES = {
    "10,000-deep array": b"[" * 10_000 + b"]" * 10_000,
    "40-deep object": (json.dumps({"order_id": "x"})[:-1] + ', "details": ' + '{"a": ' * 39 + "1" + "}" * 40).encode(),
}


@pytest.mark.parametrize("shape", list(DEEP_BODIES))
def test_json_nested_too_deep_is_400_on_every_json_route(api: Api, fake: FakeIntegrator, shape: str) -> None:
    """Python's parser recursed into a 10,000-deep array (a 500); anything past 16 levels is refused as malformed
    before parsing, on every route that reads JSON, the signed callback route included."""
    partner = Partner(api, "p", fake)
    order = api.post(ORDERS, order_body()).json_body
    raw = DEEP_BODIES[shape]
    answers = {
        "create order": api.post(ORDERS, raw=raw),
        "patch order": api.patch(f"{ORDERS}/{order['id']}", raw=raw, headers={"If-Match": str(order["version"])}),
        "create integrator": api.post(INTEGRATORS, raw=raw),
        "patch integrator": api.patch(f"{INTEGRATORS}/p", raw=raw),
        "replay": api.post(f"{INTEGRATORS}/p/replay", raw=raw),
        "preview": api.post(f"{INTEGRATORS}/p/preview", raw=raw),
        "create token": api.post(TOKENS, raw=raw),
        "callback": partner.post(raw),
    }
    for route, response in answers.items():
        assert response.status_code == 400, (route, response.status_code, response.body[:300])
        error = response.json_body["error"]
        assert error["code"] == "malformed_request" and "16 levels" in error["message"], route
        assert error["details"][0]["type"] == "json_too_deep", route


def test_json_at_the_depth_limit_is_read_as_usual(api: Api, fake: FakeIntegrator) -> None:
    """Sixteen levels pass: callback `details` nested that deep are kept as sent."""
    partner = Partner(api, "p", fake)
    api.post(ORDERS, order_body())
    details: Any = 1
    for _ in range(15):  # the body itself is the sixteenth level
        details = {"a": details}
    response = partner.post({"order_id": "no-such-order", "status": "preparing", "details": details})
    assert response.status_code == 404, response.body  # parsed and validated: only the order is unknown


def test_a_cursor_nested_too_deep_is_refused_as_a_bad_cursor(api: Api) -> None:
    cursor = base64.urlsafe_b64encode(b"[" * 5_000 + b"]" * 5_000).decode().rstrip("=")
    response = api.get(f"{ORDERS}?seller_id=s-1&cursor={cursor}")
    assert response.status_code == 400 and response.json_body["error"]["details"][0]["field"] == "cursor"


# --- IPv6 addresses that lead to internal IPv4 addresses ----------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254 (instance metadata)
        "2002:0a00:0001:1::5",  # 6to4 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
        "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1 (obfuscated)
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    ],
)
def test_ipv6_spellings_of_internal_ipv4_addresses_are_refused(
    api: Api, configure: Any, dns: dict[str, str], address: str
) -> None:
    configure(ALLOW_LOOPBACK_INTEGRATORS="false")
    dns["tunnel.partner.example"] = address
    for url in (f"https://[{address}]/orders", "https://tunnel.partner.example/orders"):
        response = api.post(INTEGRATORS, {"name": "p", "url": url, "auth": {"type": "none"}})
        assert response.status_code == 422, (url, response.body)
        assert response.json_body["error"]["details"][0]["field"] == "url"
    assert api.get(INTEGRATORS).json_body["items"] == []


def test_a_6to4_address_of_a_public_host_is_still_allowed(api: Api, configure: Any, dns: dict[str, str]) -> None:
    configure(ALLOW_LOOPBACK_INTEGRATORS="false")
    dns["tunnel.partner.example"] = "2002:5db8:d822::1"  # 6to4 of 93.184.216.34
    response = api.post(INTEGRATORS, {"name": "p", "url": "https://tunnel.partner.example/", "auth": {"type": "none"}})
    assert response.status_code == 201, response.body


# --- tokens that expire, and the bootstrap admin token switched off ----------------------------------------------


def shift_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    real = clock.utcnow
    monkeypatch.setattr(clock, "utcnow", lambda: real() + timedelta(seconds=seconds))


def test_a_token_issued_to_expire_stops_working_when_it_expires(
    api: Api, monkeypatch: pytest.MonkeyPatch, app: Any
) -> None:
    issued = api.post(TOKENS, {"role": "seller", "seller_id": "s-1", "expires_in_seconds": 3600})
    assert issued.status_code == 201, issued.body
    body = issued.json_body
    assert clock.parse_iso(body["expires_at"]) - clock.parse_iso(body["created_at"]) == timedelta(hours=1)
    seller = api.as_(body["token"])
    assert seller.get(ORDERS).status_code == 200
    listed = {t["id"]: t for t in api.get(TOKENS).json_body["items"]}
    assert listed[body["id"]]["expires_at"] == body["expires_at"]

    shift_clock(monkeypatch, 3601)
    refused = seller.get(ORDERS)
    revoked = api.post(TOKENS, {"role": "seller", "seller_id": "s-1"}).json_body
    api.delete(f"{TOKENS}/{revoked['id']}")
    # refused exactly as a revoked token is (nothing tells an attacker which it was)
    assert (refused.status_code, refused.body) == (
        api.get(ORDERS, token=revoked["token"]).status_code,
        api.get(ORDERS, token=revoked["token"]).body,
    )
    assert refused.status_code in (401, 403)


@pytest.mark.parametrize("expires", [0, 59, 366 * 86_400 + 1, "3600", 3600.5, True])
def test_an_expiry_outside_a_minute_to_a_year_is_refused(api: Api, expires: Any) -> None:
    response = api.post(TOKENS, {"role": "admin", "expires_in_seconds": expires})
    assert response.status_code == 422, response.body
    assert response.json_body["error"]["details"][0]["field"] == "expires_in_seconds"


def test_the_bootstrap_admin_token_can_be_disabled_once_another_admin_token_exists(api: Api) -> None:
    # alone, it cannot be disabled: nobody could administer the service any more
    refused = api.delete(f"{TOKENS}/bootstrap-admin")
    assert refused.status_code == 409, refused.body
    assert api.get(TOKENS).status_code == 200
    # an admin token that expires does not count: it would lock everybody out when it expires
    api.post(TOKENS, {"role": "admin", "expires_in_seconds": 3600})
    assert api.delete(f"{TOKENS}/bootstrap-admin").status_code == 409

    admin = api.as_(api.post(TOKENS, {"role": "admin", "label": "ops"}).json_body["token"])
    assert admin.delete(f"{TOKENS}/bootstrap-admin").status_code == 204
    assert api.get(TOKENS).status_code in (401, 403)
    assert api.get(ORDERS).status_code in (401, 403)
    listed = {t["id"]: t for t in admin.get(TOKENS).json_body["items"]}
    assert listed["bootstrap-admin"]["revoked_at"] is not None
    # the remaining admin token is now the last one that works: it cannot revoke itself
    own_id = next(t["id"] for t in listed.values() if t["label"] == "ops")
    assert admin.delete(f"{TOKENS}/{own_id}").status_code == 409
    assert admin.get(TOKENS).status_code == 200


def test_the_bootstrap_token_is_refused_like_any_bad_token_once_disabled(api: Api) -> None:
    admin = api.as_(api.post(TOKENS, {"role": "admin"}).json_body["token"])
    assert admin.delete(f"{TOKENS}/bootstrap-admin").status_code == 204
    disabled = api.get(ORDERS, token=ADMIN_TOKEN)
    unknown = api.get(ORDERS, token="orl_0123456789abcdef_" + "A" * 43)
    assert (disabled.status_code, disabled.body) == (unknown.status_code, unknown.body)


def test_two_admins_revoking_each_other_at_once_leave_one_admin(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check that another admin remains is part of the revoking write: if the other token is revoked between
    the check and the write, the write is refused and the decision taken again (409), never both."""
    from chalicelib.db import tokens as store
    from chalicelib.domain.clock import iso

    first, second = (api.post(TOKENS, {"role": "admin"}).json_body for _ in range(2))
    assert api.as_(first["token"]).delete(f"{TOKENS}/bootstrap-admin").status_code == 204
    real = store.revoke_keeping

    def revoked_meanwhile(token_id: str, at: str, keeper: str, **kw: Any) -> None:
        store.revoke(keeper, iso())  # the other admin's request lands first
        monkeypatch.setattr(store, "revoke_keeping", real)
        real(token_id, at, keeper, **kw)

    monkeypatch.setattr(store, "revoke_keeping", revoked_meanwhile)
    refused = api.as_(first["token"]).delete(f"{TOKENS}/{first['id']}")
    assert refused.status_code == 409, refused.body
    assert api.as_(first["token"]).get(TOKENS).status_code == 200
    assert api.as_(second["token"]).get(TOKENS).status_code in (401, 403)


def test_another_admin_token_can_still_be_revoked_while_the_bootstrap_token_works(api: Api) -> None:
    other = api.post(TOKENS, {"role": "admin"}).json_body
    assert api.delete(f"{TOKENS}/{other['id']}").status_code == 204
    assert api.get(ORDERS, token=other["token"]).status_code in (401, 403)


# --- integrator credentials that sending could not use ------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + "A" * 17,  # the old pattern's shape, not base64 (17 characters)
        "whsec_%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%",
        "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("="),  # padding left out
        hmac_secret(16),  # too short a key
        hmac_secret(65),  # too long a key
        base64.b64encode(b"k" * 32).decode(),  # no prefix
    ],
)
def test_an_hmac_secret_that_signing_cannot_use_is_refused(api: Api, fake: FakeIntegrator, secret: str) -> None:
    """The fuzzer registered `whsec_` + 17 characters; the preview then answered 500 (secret is not base64)."""
    body = {"name": "p", "url": fake.url("/p"), "auth": {"type": "hmac", "secret": secret}}
    response = api.post(INTEGRATORS, body)
    assert response.status_code == 422, response.body
    assert response.json_body["error"]["details"][0]["field"] == "auth.hmac.secret"
    assert secret not in response.body.decode()
    assert api.post(INTEGRATORS, {**body, "auth": {"type": "none"}}).status_code == 201
    changed = api.patch(f"{INTEGRATORS}/p", {"auth": {"type": "hmac", "secret": secret}})
    assert changed.status_code == 422, changed.body
    assert api.post(f"{INTEGRATORS}/p/preview").status_code == 200


@pytest.mark.parametrize("size", [24, 32, 64])
def test_an_hmac_secret_of_24_to_64_bytes_signs_the_preview(api: Api, fake: FakeIntegrator, size: int) -> None:
    body = {"name": "p", "url": fake.url("/p"), "auth": {"type": "hmac", "secret": hmac_secret(size)}}
    assert api.post(INTEGRATORS, body).status_code == 201
    preview = api.post(f"{INTEGRATORS}/p/preview")
    assert preview.status_code == 200, preview.body
    assert preview.json_body["headers"]["webhook-signature"]


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"type": "bearer", "token": "abc def ghi"}, "auth.bearer.token"),
        ({"type": "bearer", "token": "abcdefgh\n"}, "auth.bearer.token"),
        ({"type": "bearer", "token": "abcdéfgh€"}, "auth.bearer.token"),
        ({"type": "api_key", "key": "key\twith-tab"}, "auth.api_key.key"),
        ({"type": "api_key", "header": "X Key", "key": "abcdefghij"}, "auth.api_key.header"),
        (
            {"type": "oauth2_client_credentials", "client_id": "id\r\n", "client_secret": "s" * 12},
            "auth.oauth2_client_credentials.client_id",
        ),
        (
            {"type": "oauth2_client_credentials", "client_id": "id", "client_secret": "s" * 12 + "\x00"},
            "auth.oauth2_client_credentials.client_secret",
        ),
        (
            {"type": "oauth2_client_credentials", "client_id": "id", "client_secret": "s" * 12, "scope": "a\nb"},
            "auth.oauth2_client_credentials.scope",
        ),
        (
            {"type": "oauth2_client_credentials", "client_id": "id", "client_secret": "s" * 12, "scope": " a"},
            "auth.oauth2_client_credentials.scope",
        ),
    ],
)
def test_credentials_with_whitespace_or_control_characters_are_refused(
    api: Api, fake: FakeIntegrator, auth: dict[str, Any], field: str
) -> None:
    if auth["type"] == "oauth2_client_credentials":
        auth = {**auth, "token_url": fake.url("/token")}
    response = api.post(INTEGRATORS, {"name": "p", "url": fake.url("/p"), "auth": auth})
    assert response.status_code == 422, response.body
    assert [d["field"] for d in response.json_body["error"]["details"]] == [field]
    assert api.post(INTEGRATORS, {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}}).status_code == 201
    assert api.patch(f"{INTEGRATORS}/p", {"auth": auth}).status_code == 422


def test_an_oauth2_scope_of_several_tokens_is_accepted(api: Api, fake: FakeIntegrator) -> None:
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": fake.url("/token"),
        "client_id": "relay",
        "client_secret": "s" * 12,
        "scope": "orders:write orders:read",
    }
    assert api.post(INTEGRATORS, {"name": "p", "url": fake.url("/p"), "auth": auth}).status_code == 201
