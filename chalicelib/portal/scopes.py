"""What a portal session may do besides looking. Apart from access.py so that app.py, which every function
imports, declares the portal's routes without importing pydantic or the table models."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    VIEW = "view"
    RETRY = "retry"
    MANAGE_ENDPOINT = "manage_endpoint"
    ROTATE_SECRET = "rotate_secret"
