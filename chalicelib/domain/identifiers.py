"""The one format every external id (user, seller, item, order) must have, shared by every request schema."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

Identifier = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")
]
