"""The integrator registry's use cases: register, read, change and remove integrators, and load them with
their secrets for the dispatcher and the callbacks. Configuration lives in DynamoDB, secrets in Secrets
Manager (`integrators.secrets`); secrets are shown once, at creation or rotation, and masked on every read.
Every change here drops the integrator from this container's cache (`integrators.cache`)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from secrets import token_hex
from typing import Any

from pydantic import BaseModel, ValidationError

from chalicelib.db import integrators as store
from chalicelib.db.concurrency import StaleWrite
from chalicelib.domain.clock import iso
from chalicelib.domain.integrator import IntegratorConfig
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.integrators import secrets
from chalicelib.integrators.auth import HmacAuth, split_auth
from chalicelib.integrators.cache import forget
from chalicelib.integrators.models import CreateIntegratorRequest, IntegratorView, UpdateIntegratorRequest
from chalicelib.integrators.signing import generate_secret
from chalicelib.observability import logger
from chalicelib.settings import get_settings
from chalicelib.validation import field_errors


def _view(config: IntegratorConfig, stored: dict[str, Any], callback_base: str | None = None) -> dict[str, Any]:
    auth = dict(config.auth_params)
    for key, value in (stored.get("auth") or {}).items():
        auth[key] = secrets.mask(str(value))
    base = callback_base or get_settings().public_base_url or ""
    return IntegratorView(
        name=config.name,
        url=config.url,
        auth={"type": config.auth_type, **auth},
        events=list(config.events),
        enabled=config.enabled,
        timeout_seconds=config.timeout_seconds,
        seller_ids=config.seller_ids,
        deliver_within_seconds=config.deliver_within_seconds,
        ack_within_seconds=config.ack_within_seconds,
        max_requests_per_second=config.max_requests_per_second,
        callback_url=f"{base}/api/v1/callbacks/{config.name}",
        payload_template=config.payload_template,
        payload_template_version=config.payload_template_version or None,
        registration_id=config.registration_id,
        version=config.version,
        created_at=config.created_at,
        updated_at=config.updated_at,
    ).model_dump(mode="json", exclude_none=True)


def create_integrator(request: CreateIntegratorRequest, *, callback_base: str) -> dict[str, Any]:
    if store.get(request.name) is not None:
        raise Conflict(f"integrator {request.name} already exists")
    auth = request.auth
    if isinstance(auth, HmacAuth) and auth.secret is None:
        auth = HmacAuth(type="hmac", secret=generate_secret())
    public, secret_fields = split_auth(auth)
    callback_secret = generate_secret()
    stored = {"auth": secret_fields, "callback_secrets": [callback_secret]}
    # A secret name of this registration's own: the conditional insert below decides who owns the name, and the
    # loser's secret is discarded without touching the winner's.
    secret_name = secrets.new_secret_name(request.name)
    secrets.write(secret_name, stored)
    now = iso()
    config = IntegratorConfig(
        name=request.name,
        url=request.url,
        auth_type=auth.type,
        auth_params=public,
        events=[event.value for event in request.events],
        seller_ids=request.seller_ids,
        enabled=request.enabled,
        timeout_seconds=request.timeout_seconds,
        max_requests_per_second=request.max_requests_per_second,
        secret_name=secret_name,
        version=1,
        created_at=now,
        updated_at=now,
        payload_template=request.payload_template,
        payload_template_version=1 if request.payload_template is not None else 0,
        deliver_within_seconds=request.deliver_within_seconds,
        ack_within_seconds=request.ack_within_seconds,
        registration_id=new_registration_id(),
    )
    try:
        store.insert(config)
    except StaleWrite:
        secrets.discard(secret_name)
        forget(request.name)
        raise Conflict(f"integrator {request.name} already exists") from None
    except Exception:
        secrets.discard(secret_name)
        raise
    forget(request.name)  # this container's batches see it at once
    logger.info("integrator registered", extra={"integrator": request.name, "auth_type": auth.type})
    view = _view(config, stored, callback_base)
    view["callback_secret"] = callback_secret
    if isinstance(auth, HmacAuth) and auth is not request.auth:
        view["auth"]["secret"] = auth.secret  # generated for the caller: shown this once
    return view


def new_registration_id() -> str:
    """A registration's own identity: what its deliveries and callbacks are recorded under, so a name deleted and
    registered again starts from nothing."""
    return "reg_" + token_hex(8)


def _config(name: str) -> IntegratorConfig:
    config = store.get(name)
    if config is None:
        raise NotFound(f"integrator {name} not found")
    return config


def require(name: str) -> IntegratorConfig:
    """The integrator's configuration, or NotFound."""
    return _config(name)


def list_integrators(*, callback_base: str | None = None) -> list[dict[str, Any]]:
    return [_view(config, secrets.read(config.secret_name), callback_base) for config in store.list_all()]


def get_integrator_view(name: str, *, callback_base: str | None = None) -> dict[str, Any]:
    config = _config(name)
    return _view(config, secrets.read(config.secret_name), callback_base)


def _replace_auth(config: IntegratorConfig, stored: dict[str, Any], auth: BaseModel) -> str | None:
    """Swap the auth block; returns a generated HMAC secret (to show once) when the caller gave none."""
    public, secret_fields = split_auth(auth)
    generated = None
    kind = auth.model_dump()["type"]
    if kind == "hmac":
        if "secret" not in secret_fields:
            generated = secret_fields["secret"] = generate_secret()
        old_secret = (stored.get("auth") or {}).get("secret")
        if config.auth_type == "hmac" and old_secret:
            # Outbound rotation: deliveries carry signatures with the new and the previous secret.
            secret_fields["previous_secrets"] = [old_secret]
    stored["auth"] = secret_fields
    config.auth_type = kind
    config.auth_params = public
    return generated


def _apply_settings(config: IntegratorConfig, request: UpdateIntegratorRequest, patch: dict[str, Any]) -> None:
    for attr in ("url", "enabled", "timeout_seconds"):
        if (value := getattr(request, attr)) is not None:
            setattr(config, attr, value)
    if request.events is not None:
        config.events = [event.value for event in request.events]
    for attr in ("seller_ids", "max_requests_per_second", "deliver_within_seconds", "ack_within_seconds"):
        if attr in patch:  # present as null: removed
            setattr(config, attr, getattr(request, attr))
    if "payload_template" in patch and request.payload_template != config.payload_template:
        config.payload_template = request.payload_template
        config.payload_template_version += 1


def update_integrator(name: str, patch: Any, *, callback_base: str | None = None) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise InvalidInput("request body must be a JSON object")
    try:
        request = UpdateIntegratorRequest.model_validate(patch)
    except ValidationError as exc:
        raise InvalidInput("invalid UpdateIntegratorRequest", field_errors(exc)) from None
    current = _config(name)
    config = replace(current)
    stored = secrets.read(current.secret_name, fresh=True)
    generated = _replace_auth(config, stored, request.auth) if request.auth is not None else None
    new_callback_secret = generate_secret() if request.rotate_callback_secret else None
    callback_secrets_changed = _change_callback_secrets(stored, request, new_callback_secret)
    if request.auth is not None or callback_secrets_changed:
        # Changed secrets go under a new name that only this update's row points at: a 409 below orphans nothing
        # anyone reads, and the current secret stays intact until the row has moved on.
        config.secret_name = secrets.new_secret_name(name)
        secrets.write(config.secret_name, stored)
    _apply_settings(config, request, patch)
    config.version = current.version + 1
    config.updated_at = iso()
    try:
        store.replace(config, current.version)
    except StaleWrite:
        _discard_unless_current(config, current)
        forget(name)  # someone else changed it: what this container holds may be stale
        raise Conflict(f"integrator {name} changed meanwhile; retry") from None
    except Exception:
        _discard_unless_current(config, current)
        raise
    forget(name)
    _discard_unless_current(current, config)
    logger.info("integrator updated", extra={"integrator": name, "fields": sorted(patch)})
    if config.enabled and not current.enabled:
        _resume(name)
    view = _view(config, stored, callback_base)
    if new_callback_secret:
        view["callback_secret"] = new_callback_secret
    if generated:
        view["auth"]["secret"] = generated
    return view


def _change_callback_secrets(stored: dict[str, Any], request: UpdateIntegratorRequest, new_secret: str | None) -> bool:
    """Rotate (the previous secret stays valid for the overlap, so an integrator switches without downtime) and/or
    end the previous secret's overlap at once (it leaked, or the integrator has switched). True if changed."""
    current = list(stored.get("callback_secrets") or [])
    if new_secret:
        until = time.time() + get_settings().callback_secret_overlap_seconds
        stored["callback_secrets"], stored[secrets.PREVIOUS_UNTIL] = [new_secret, *current[:1]], until
    if request.expire_previous_callback_secret:
        stored["callback_secrets"] = stored["callback_secrets"][:1] if new_secret else current[:1]
        stored.pop(secrets.PREVIOUS_UNTIL, None)
    return bool(new_secret) or (request.expire_previous_callback_secret and len(current) > 1)


def _discard_unless_current(unused: IntegratorConfig, current: IntegratorConfig) -> None:
    if unused.secret_name != current.secret_name:
        secrets.discard(unused.secret_name)


def _resume(name: str) -> None:
    """Enabled again: start from a closed circuit and resume every delivery that waited meanwhile."""
    from chalicelib import queue
    from chalicelib.db import integrator_control
    from chalicelib.db.integrator_control import CircuitChanged
    from chalicelib.domain.circuit import Circuit
    from chalicelib.messages import DrainWaiting

    circuit = integrator_control.get_circuit(name)
    if circuit != Circuit(integrator=name, revision=circuit.revision):
        with contextlib.suppress(CircuitChanged):
            integrator_control.save_circuit(Circuit(integrator=name, revision=circuit.revision))
    queue.send(DrainWaiting(integrator=name))


def delete_integrator(name: str) -> None:
    config = _config(name)
    store.delete(name)
    forget(name)
    secrets.delete(config.secret_name)
    logger.info("integrator removed", extra={"integrator": name})
