"""Integrator secrets in Secrets Manager, one JSON secret per integrator, read through Powertools Parameters
with a cache; and how they are masked whenever they are shown."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.settings import get_settings

CACHE_SECONDS = 300


def secret_name(name: str) -> str:
    return f"{get_settings().secrets_prefix}/integrators/{name}"


def write(name: str, value: dict[str, Any]) -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.set_secret(secret_name(name), json.dumps(value))
    parameters.clear_caches()


def read(name: str, *, fresh: bool = False) -> dict[str, Any]:
    """`{"auth": {...secret auth fields}, "callback_secrets": [...]}`, cached CACHE_SECONDS unless `fresh`."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_name(name), transform="json", max_age=CACHE_SECONDS, force_fetch=fresh)
    return value if isinstance(value, dict) else {}


def delete(name: str) -> None:
    from aws_lambda_powertools.utilities import parameters

    from chalicelib.aws import secretsmanager

    secretsmanager().delete_secret(SecretId=secret_name(name), RecoveryWindowInDays=7)
    parameters.clear_caches()


def mask(value: str) -> str:
    return "****" + value[-4:] if len(value) > 12 else "****"
