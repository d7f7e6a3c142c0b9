"""Integrator registry: configuration in DynamoDB, every secret in Secrets Manager (read through Powertools
Parameters with a cache), secrets shown once at creation and masked on every read."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from chalicelib.db import integrators as store
from chalicelib.db.records import IntegratorRecord
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.integrators.signing import generate_secret
from chalicelib.observability import logger
from chalicelib.orders.domain import EventType, iso
from chalicelib.orders.models import Identifier
from chalicelib.settings import get_settings
from chalicelib.validation import field_errors

SECRET_CACHE_SECONDS = 300
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Secret = Annotated[str, StringConstraints(min_length=8, max_length=4096)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoAuth(_Strict):
    type: Literal["none"]


class ApiKeyAuth(_Strict):
    type: Literal["api_key"]
    header: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")] = "X-API-Key"
    key: Secret


class BearerAuth(_Strict):
    type: Literal["bearer"]
    token: Secret


class OAuth2Auth(_Strict):
    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    client_secret: Secret
    scope: str | None = None


class HmacAuth(_Strict):
    type: Literal["hmac"]
    secret: Annotated[str, StringConstraints(pattern=r"^whsec_[A-Za-z0-9+/=]{16,}$")] | None = None


Auth = Annotated[NoAuth | ApiKeyAuth | BearerAuth | OAuth2Auth | HmacAuth, Field(discriminator="type")]
SECRET_FIELDS = {
    "api_key": ("key",),
    "bearer": ("token",),
    "oauth2_client_credentials": ("client_secret",),
    "hmac": ("secret",),
    "none": (),
}


def _internal_host(host: str) -> bool:
    """Loopback, private, link-local (the instance metadata address) and other non-public literal addresses."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _check_url(url: str) -> str:
    """Integrators are public https endpoints; the local stack alone may use plain http on loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if get_settings().allow_loopback_integrators:
        return url
    if _internal_host(parts.hostname):
        raise ValueError("internal addresses (loopback, private, link-local) are only allowed in the local stack")
    if parts.scheme != "https":
        raise ValueError("must use https")
    return url


class CreateIntegratorRequest(_Strict):
    name: Name
    url: str
    auth: Auth
    events: Annotated[list[EventType], Field(min_length=1)] = list(EventType)
    enabled: bool = True
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0
    seller_ids: list[Identifier] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _check_url(url)

    @field_validator("auth")
    @classmethod
    def _token_url(cls, auth: Any) -> Any:
        if isinstance(auth, OAuth2Auth):
            _check_url(auth.token_url)
        return auth


class UpdateIntegratorRequest(_Strict):
    """Every field optional; `auth` replaces the whole auth block. `rotate_callback_secret` issues a new
    callback secret and keeps the previous one valid until the next rotation."""

    url: str | None = None
    auth: Auth | None = None
    events: Annotated[list[EventType], Field(min_length=1)] | None = None
    enabled: bool | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] | None = None
    seller_ids: list[Identifier] | None = None
    rotate_callback_secret: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else _check_url(url)


class IntegratorView(BaseModel):
    name: str
    url: str
    auth: dict[str, Any]
    events: list[str]
    enabled: bool
    timeout_seconds: float
    seller_ids: list[str] | None
    callback_url: str
    version: int
    created_at: str
    updated_at: str
    callback_secret: str | None = Field(default=None, description="Shown once, at creation or rotation")


@dataclass(frozen=True)
class Integrator:
    """What the dispatcher needs: configuration plus secrets, never serialised anywhere."""

    name: str
    url: str
    auth_type: str
    auth: dict[str, Any]
    events: list[str]
    enabled: bool
    timeout_seconds: float
    seller_ids: list[str] | None
    callback_secrets: list[str] = field(default_factory=list)

    def wants(self, event: str, seller_id: str) -> bool:
        return event in self.events and (self.seller_ids is None or seller_id in self.seller_ids)


# --- secrets ---------------------------------------------------------------------------------------------------


def secret_name(name: str) -> str:
    return f"{get_settings().secrets_prefix}/integrators/{name}"


def _write_secret(name: str, value: dict[str, Any]) -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.set_secret(secret_name(name), json.dumps(value))
    parameters.clear_caches()


def _read_secret(name: str, *, fresh: bool = False) -> dict[str, Any]:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_name(name), transform="json", max_age=SECRET_CACHE_SECONDS, force_fetch=fresh)
    return value if isinstance(value, dict) else {}


def _delete_secret(name: str) -> None:
    from aws_lambda_powertools.utilities import parameters

    from chalicelib.aws import secretsmanager

    secretsmanager().delete_secret(SecretId=secret_name(name), RecoveryWindowInDays=7)
    parameters.clear_caches()


def _mask(value: str) -> str:
    return "****" + value[-4:] if len(value) > 12 else "****"


def _split_auth(auth: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public parameters, secret fields) of an auth block."""
    data = auth.model_dump(exclude_none=True)
    secret_keys = SECRET_FIELDS[data["type"]]
    return ({k: v for k, v in data.items() if k not in secret_keys}, {k: data[k] for k in secret_keys if k in data})


# --- use cases -------------------------------------------------------------------------------------------------


def _view(record: IntegratorRecord, secrets: dict[str, Any], callback_base: str | None = None) -> dict[str, Any]:
    auth = dict(record.auth_params)
    for key, value in (secrets.get("auth") or {}).items():
        auth[key] = _mask(str(value))
    base = callback_base or get_settings().public_base_url or ""
    return IntegratorView(
        name=record.name,
        url=record.url,
        auth={"type": record.auth_type, **auth},
        events=list(record.events),
        enabled=bool(record.enabled),
        timeout_seconds=float(record.timeout_seconds),
        seller_ids=record.seller_ids,
        callback_url=f"{base}/api/v1/callbacks/{record.name}",
        version=int(record.version),
        created_at=record.created_at,
        updated_at=record.updated_at,
    ).model_dump(mode="json", exclude_none=True)


def create_integrator(request: CreateIntegratorRequest, *, callback_base: str) -> dict[str, Any]:
    if store.get(request.name) is not None:
        raise Conflict(f"integrator {request.name} already exists")
    auth = request.auth
    if isinstance(auth, HmacAuth) and auth.secret is None:
        auth = HmacAuth(type="hmac", secret=generate_secret())
    public, secret_fields = _split_auth(auth)
    callback_secret = generate_secret()
    secrets = {"auth": secret_fields, "callback_secrets": [callback_secret]}
    _write_secret(request.name, secrets)
    now = iso()
    record = IntegratorRecord(
        name=request.name,
        url=request.url,
        auth_type=auth.type,
        auth_params={k: v for k, v in public.items() if k != "type"},
        events=[event.value for event in request.events],
        seller_ids=request.seller_ids,
        enabled=request.enabled,
        timeout_seconds=request.timeout_seconds,
        secret_name=secret_name(request.name),
        version=1,
        created_at=now,
        updated_at=now,
    )
    if not store.insert(record):
        raise Conflict(f"integrator {request.name} already exists")
    logger.info("integrator registered", extra={"integrator": request.name, "auth_type": auth.type})
    view = _view(record, secrets, callback_base)
    view["callback_secret"] = callback_secret
    if isinstance(auth, HmacAuth) and auth is not request.auth:
        view["auth"]["secret"] = auth.secret  # generated for the caller: shown this once
    return view


def _record(name: str) -> IntegratorRecord:
    record = store.get(name)
    if record is None:
        raise NotFound(f"integrator {name} not found")
    return record


def list_integrators() -> list[dict[str, Any]]:
    return [_view(record, _read_secret(record.name)) for record in store.list_all()]


def get_integrator_view(name: str) -> dict[str, Any]:
    record = _record(name)
    return _view(record, _read_secret(name))


def _replace_auth(record: IntegratorRecord, secrets: dict[str, Any], auth: BaseModel) -> str | None:
    """Swap the auth block; returns a generated HMAC secret (to show once) when the caller gave none."""
    public, secret_fields = _split_auth(auth)
    generated = None
    if public["type"] == "hmac":
        if "secret" not in secret_fields:
            generated = secret_fields["secret"] = generate_secret()
        old_secret = (secrets.get("auth") or {}).get("secret")
        if record.auth_type == "hmac" and old_secret:
            # Outbound rotation: deliveries carry signatures with the new and the previous secret.
            secret_fields["previous_secrets"] = [old_secret]
    secrets["auth"] = secret_fields
    record.auth_type = public["type"]
    record.auth_params = {k: v for k, v in public.items() if k != "type"}
    return generated


def _apply_settings(record: IntegratorRecord, request: UpdateIntegratorRequest, patch: dict[str, Any]) -> None:
    for attr in ("url", "enabled", "timeout_seconds"):
        if (value := getattr(request, attr)) is not None:
            setattr(record, attr, value)
    if request.events is not None:
        record.events = [event.value for event in request.events]
    if "seller_ids" in patch:
        record.seller_ids = request.seller_ids


def update_integrator(name: str, patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise InvalidInput("request body must be a JSON object")
    try:
        request = UpdateIntegratorRequest.model_validate(patch)
    except ValidationError as exc:
        raise InvalidInput("invalid UpdateIntegratorRequest", field_errors(exc)) from None
    record = _record(name)
    secrets = _read_secret(name, fresh=True)
    generated = _replace_auth(record, secrets, request.auth) if request.auth is not None else None
    new_callback_secret = generate_secret() if request.rotate_callback_secret else None
    if new_callback_secret:
        # The previous secret stays valid until the next rotation, so integrators can switch without downtime.
        secrets["callback_secrets"] = [new_callback_secret, *(secrets.get("callback_secrets") or [])[:1]]
    if request.auth is not None or new_callback_secret:
        _write_secret(name, secrets)
    _apply_settings(record, request, patch)
    expected = int(record.version)
    record.version = expected + 1
    record.updated_at = iso()
    if not store.replace(record, expected):
        raise Conflict(f"integrator {name} changed meanwhile; retry")
    logger.info("integrator updated", extra={"integrator": name, "fields": sorted(patch)})
    view = _view(record, secrets)
    if new_callback_secret:
        view["callback_secret"] = new_callback_secret
    if generated:
        view["auth"]["secret"] = generated
    return view


def delete_integrator(name: str) -> None:
    _record(name)
    store.delete(name)
    _delete_secret(name)
    logger.info("integrator removed", extra={"integrator": name})


def load_integrators() -> list[Integrator]:
    """Every integrator with its secrets, for the dispatcher (secrets cached for SECRET_CACHE_SECONDS)."""
    return [_with_secrets(record) for record in store.list_all()]


def load_integrator(name: str) -> Integrator | None:
    record = store.get(name)
    return _with_secrets(record) if record is not None else None


def _with_secrets(record: IntegratorRecord) -> Integrator:
    secrets = _read_secret(record.name)
    return Integrator(
        name=record.name,
        url=record.url,
        auth_type=record.auth_type,
        auth={**record.auth_params, **(secrets.get("auth") or {})},
        events=list(record.events),
        enabled=bool(record.enabled),
        timeout_seconds=float(record.timeout_seconds),
        seller_ids=record.seller_ids,
        callback_secrets=list(secrets.get("callback_secrets") or []),
    )


def callback_secrets(name: str, *, fresh: bool = False) -> list[str] | None:
    """The secrets a callback from `name` may be signed with, or None for an unknown integrator."""
    if store.get(name) is None:
        return None
    return list(_read_secret(name, fresh=fresh).get("callback_secrets") or [])
