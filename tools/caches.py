"""Forget every per-process cache the service keeps (settings, clients, table bindings, secrets, integrators,
tokens).

A Lambda container never needs this; tests and benchmarks that point the service at a new AWS endpoint do."""

from __future__ import annotations


def reset_all() -> None:
    from aws_lambda_powertools.utilities import parameters

    from chalicelib import queue
    from chalicelib.aws import reset_clients
    from chalicelib.db.records import unbind_tables
    from chalicelib.dispatch import authentication, circuit, health_tally
    from chalicelib.idempotency import reset_idempotency
    from chalicelib.integrators import cache
    from chalicelib.settings import reset_settings

    reset_settings()
    reset_clients()
    unbind_tables()
    reset_idempotency()
    parameters.clear_caches()
    cache.forget()
    authentication.tokens.clear()
    circuit.forget()
    health_tally.flush_discard()
    queue.forget_resolved()
