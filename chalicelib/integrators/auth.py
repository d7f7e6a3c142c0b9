"""How an admin may ask us to authenticate to an integrator: one schema per auth type, and which of its fields
are secrets. A new auth type is a model here plus its headers in `dispatch.authentication`."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from chalicelib.integrators.url_policy import MAX_URL_LENGTH, URL_PATTERN

# Credentials travel in HTTP headers (or Basic auth): anything but visible ASCII (a space, a newline, a control
# character, a non-Latin-1 letter) would make every request raise before it is sent, so it is refused up front.
VISIBLE_ASCII = r"^[\x21-\x7E]+$"
# RFC 6749 3.3: scope tokens of visible ASCII (no `"` or `\`), separated by single spaces.
SCOPE = r"^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$"
# Standard Webhooks: `whsec_` and the base64 of a 24 to 64 byte key (32 to 88 base64 characters, padded).
HMAC_SECRET = r"^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
HMAC_KEY_BYTES = (24, 64)


def _checked(pattern: str, message: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _signing_key(secret: str) -> str:
    """The secret only if signing can use it: a 500 at the first preview or delivery is the alternative."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    low, high = HMAC_KEY_BYTES
    if not secret.startswith("whsec_") or not low <= len(key) <= high:
        raise ValueError(f"must be whsec_ followed by the base64 (padded) of a {low} to {high} byte key")
    return secret


HeaderSafe = _checked(VISIBLE_ASCII, "must be visible ASCII: no spaces, control characters or non-ASCII letters")
Secret = Annotated[
    str,
    StringConstraints(min_length=8, max_length=4096),
    HeaderSafe,
    Field(json_schema_extra={"pattern": VISIBLE_ASCII}),
]


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
    token_url: Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN)]
    client_id: Annotated[
        str,
        StringConstraints(min_length=1, max_length=256),
        HeaderSafe,
        Field(json_schema_extra={"pattern": VISIBLE_ASCII}),
    ]
    client_secret: Secret
    scope: (
        Annotated[
            str,
            StringConstraints(max_length=1024),
            _checked(SCOPE, "must be scope tokens of visible ASCII separated by single spaces"),
            Field(json_schema_extra={"pattern": SCOPE}),
        ]
        | None
    ) = None


class HmacAuth(_Strict):
    type: Literal["hmac"]
    secret: (
        Annotated[
            str,
            AfterValidator(_signing_key),
            Field(json_schema_extra={"pattern": HMAC_SECRET, "minLength": 38, "maxLength": 94}),
        ]
        | None
    ) = Field(default=None, description="Generated when left out")


Auth = Annotated[NoAuth | ApiKeyAuth | BearerAuth | OAuth2Auth | HmacAuth, Field(discriminator="type")]
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "api_key": ("key",),
    "bearer": ("token",),
    "oauth2_client_credentials": ("client_secret",),
    "hmac": ("secret",),
    "none": (),
}


def split_auth(auth: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public parameters without `type`, secret fields) of an auth block."""
    data = auth.model_dump(exclude_none=True)
    secret_keys = SECRET_FIELDS[data["type"]]
    public = {k: v for k, v in data.items() if k not in secret_keys and k != "type"}
    return public, {k: data[k] for k in secret_keys if k in data}
