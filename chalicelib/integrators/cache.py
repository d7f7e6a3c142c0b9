"""Integrators with their secrets, cached per container.

The dispatcher needs every integrator for each batch and a callback needs its integrator's secrets: read from
DynamoDB and Secrets Manager each time, that was a Scan per batch and a GetItem per callback. They are kept for
CACHE_SECONDS (one minute, like API Gateway's cache of a token; secret values for `secrets.CACHE_SECONDS`).

What that allows, knowingly: a change made through the API in another container (disabled, deleted, a new URL or
auth) reaches this one within CACHE_SECONDS, so a disabled or deleted integrator stops receiving within that time,
not at once. A change made in this container drops the integrator from the cache at once (`forget`); an
integrator cached as disabled is read again when asked for alone (so the drain that follows enabling it resumes at
once); a callback whose signature fails re-reads its secrets fresh (a just-rotated callback secret works at once),
at most once per name per `callback_secret_refresh_seconds` (forged callbacks must not each cost two reads).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from chalicelib.db import integrators as store
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.integrator import Integrator, IntegratorConfig
from chalicelib.integrators import secrets
from chalicelib.integrators.secrets import PREVIOUS_UNTIL
from chalicelib.settings import get_settings

CACHE_SECONDS = 60.0
_lock = threading.Lock()
_by_name: dict[str, tuple[float, Integrator]] = {}
_everyone: tuple[float, list[Integrator]] | None = None
_generation = 0  # bumped by every `forget`: a read that started before it is not cached
# Per name, when this container last read the integrator uncached for a callback (monotonic seconds) and whether
# it was found. Bounded: names come from the request path, and invented ones must not grow it without limit.
_callback_reads: OrderedDict[str, tuple[float, bool]] = OrderedDict()
CALLBACK_READS_KEPT = 4096


def _fresh(loaded_at: float) -> bool:
    return time.monotonic() - loaded_at < CACHE_SECONDS


def forget(name: str | None = None) -> None:
    """Drop `name` (every integrator when None) from this container's cache: it was changed or removed here."""
    global _everyone, _generation
    with _lock:
        _generation += 1
        _everyone = None
        if name is None:
            _by_name.clear()
            _callback_reads.clear()
        else:
            _by_name.pop(name, None)
            _callback_reads.pop(name, None)


def _keep(generation: int, integrators: list[Integrator], *, everyone: bool) -> None:
    global _everyone
    now = time.monotonic()
    with _lock:
        if generation != _generation:
            return  # changed meanwhile: what was read may already be stale
        if everyone:
            _everyone = (now, integrators)
        for integrator in integrators:
            _by_name[integrator.name] = (now, integrator)


def load_integrators() -> list[Integrator]:
    """Every integrator with its secrets, for the dispatcher's batch: one Scan per container per CACHE_SECONDS."""
    with _lock:
        cached, generation = _everyone, _generation
    if cached is not None and _fresh(cached[0]):
        return list(cached[1])
    loaded = [_with_secrets(config) for config in store.list_all()]
    _keep(generation, loaded, everyone=True)
    return list(loaded)


def load_integrator(name: str, *, fresh: bool = False) -> Integrator | None:
    """One integrator with its secrets (cached; `fresh` reads the row and its secrets again). An unknown name is
    never cached, so an integrator registered in another container is found at once."""
    with _lock:
        cached, generation = _by_name.get(name), _generation
    if not fresh and cached is not None and _fresh(cached[0]) and cached[1].enabled:
        return cached[1]
    config = store.get(name)
    if config is None:
        if cached is not None:
            forget(name)  # removed elsewhere
        return None
    integrator = _with_secrets(config, fresh=fresh)
    _keep(generation, [integrator], everyone=False)
    return integrator


def _with_secrets(config: IntegratorConfig, *, fresh: bool = False) -> Integrator:
    stored = secrets.read(config.secret_name, fresh=fresh)
    return Integrator(
        name=config.name,
        url=config.url,
        auth_type=config.auth_type,
        auth={**config.auth_params, **(stored.get("auth") or {})},
        events=list(config.events),
        enabled=config.enabled,
        timeout_seconds=config.timeout_seconds,
        seller_ids=config.seller_ids,
        max_requests_per_second=config.max_requests_per_second,
        callback_secrets=list(stored.get("callback_secrets") or []),
        previous_callback_secret_until=_previous_until(config, stored),
        payload_template=config.payload_template,
        payload_template_version=config.payload_template_version,
        deliver_within_seconds=config.deliver_within_seconds,
        ack_within_seconds=config.ack_within_seconds,
        registration_id=config.registration_id,
    )


def _previous_until(config: IntegratorConfig, stored: dict[str, Any]) -> float | None:
    """Until when the previous callback secret is accepted. Rotations record it; one made before they did is
    given the overlap from the row's last change (the rotation, unless something changed since), so no previous
    secret is valid without end."""
    if len(stored.get("callback_secrets") or []) < 2:
        return None
    until = stored.get(PREVIOUS_UNTIL)
    if isinstance(until, int | float):
        return float(until)
    overlap = get_settings().callback_secret_overlap_seconds
    return parse_iso(config.updated_at).timestamp() + overlap


def _last_callback_read(name: str, now: float) -> bool | None:
    """Whether `name` was found when last read for a callback, if that was within the refresh interval."""
    with _lock:
        at, found = _callback_reads.get(name, (None, False))
    return found if at is not None and now - at < get_settings().callback_secret_refresh_seconds else None


def _read_for_callback(name: str, now: float, *, fresh: bool) -> Integrator | None:
    integrator = load_integrator(name, fresh=fresh)
    with _lock:
        _callback_reads.pop(name, None)
        _callback_reads[name] = (now, integrator is not None)
        while len(_callback_reads) > CALLBACK_READS_KEPT:
            _callback_reads.popitem(last=False)
    return integrator


def callback_integrator(name: str) -> Integrator | None:
    """The integrator a callback names, or None. Cached as for the dispatcher; a name not found is not read again
    for `callback_secret_refresh_seconds`, so invented names cost at most one GetItem per name per interval (an
    integrator registered in another container is found within that time)."""
    now = time.monotonic()
    with _lock:
        cached = _by_name.get(name)
    if cached is not None and _fresh(cached[0]):
        return cached[1]
    if _last_callback_read(name, now) is False:
        return None
    return _read_for_callback(name, now, fresh=False)


def refresh_for_callback(name: str) -> Integrator | None:
    """A signature failed with what is cached: read the integrator and its secrets again, uncached (a secret
    rotated in another container works at once), unless that was done for this name within
    `callback_secret_refresh_seconds`; then None, and the callback is refused without a read. Forged callbacks
    thus cost at most one GetItem and one GetSecretValue per name per interval."""
    now = time.monotonic()
    if _last_callback_read(name, now) is not None:
        return None
    return _read_for_callback(name, now, fresh=True)
