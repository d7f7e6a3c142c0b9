"""Integrator secrets in Secrets Manager, read through the shared client with a cache (chalicelib/aws.py); and how
they are masked whenever they are shown.

Every registration and every rotation writes a secret under a name of its own (`.../integrators/<name>/<id>`),
and the configuration row points at it (`secret_name`). So a write that loses its conditional update (409)
orphans nothing anyone reads, two concurrent registrations of one name cannot overwrite each other's secrets,
and a name deleted and registered again does not collide with its old secret's recovery window.
"""

from __future__ import annotations

import json
import secrets as random
from typing import Any

from chalicelib.settings import get_settings

CACHE_SECONDS = 300
# Key of the stored value: until when (unix seconds) the previous callback secret is still accepted.
PREVIOUS_UNTIL = "previous_callback_secret_until"


def new_secret_name(name: str) -> str:
    return f"{get_settings().secrets_prefix}/integrators/{name}/{random.token_hex(8)}"


def write(secret_name: str, value: dict[str, Any]) -> None:
    from aws_lambda_powertools.utilities import parameters

    from chalicelib.aws import forget_secret

    parameters.set_secret(secret_name, json.dumps(value))
    forget_secret(secret_name)


def read(secret_name: str, *, fresh: bool = False) -> dict[str, Any]:
    """`{"auth": {...secret auth fields}, "callback_secrets": [current, previous?], PREVIOUS_UNTIL: seconds?}`,
    cached CACHE_SECONDS unless `fresh`."""
    from chalicelib.aws import secret_text

    value = json.loads(secret_text(secret_name, max_age=CACHE_SECONDS, fresh=fresh))
    return value if isinstance(value, dict) else {}


def delete(secret_name: str, *, recoverable: bool = True) -> None:
    """Recoverable for 7 days when an integrator is removed (an admin's mistake can be undone); at once for a
    secret that never became current (its conditional write lost) or was replaced by a rotation."""
    from chalicelib.aws import forget_secret, secretsmanager

    if recoverable:
        secretsmanager().delete_secret(SecretId=secret_name, RecoveryWindowInDays=7)
    else:
        secretsmanager().delete_secret(SecretId=secret_name, ForceDeleteWithoutRecovery=True)
    forget_secret(secret_name)


def discard(secret_name: str) -> None:
    """Best effort removal of a secret nothing points at; a failure leaves an unread secret, never a wrong one."""
    from chalicelib.observability import logger

    try:
        delete(secret_name, recoverable=False)
    except Exception:  # noqa: BLE001 - the caller's outcome is already decided
        logger.warning("could not remove an unused integrator secret", extra={"secret_name": secret_name})


def mask(value: str) -> str:
    return "****" + value[-4:] if len(value) > 12 else "****"
