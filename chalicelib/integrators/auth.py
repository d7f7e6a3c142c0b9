"""How an admin may ask us to authenticate to an integrator: one schema per auth type, and which of its fields
are secrets. A new auth type is a model here plus its headers in `dispatch.authentication`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chalicelib.integrators.url_policy import MAX_URL_LENGTH, URL_PATTERN

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
    token_url: Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN)]
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    client_secret: Secret
    scope: str | None = None


class HmacAuth(_Strict):
    type: Literal["hmac"]
    secret: Annotated[str, StringConstraints(pattern=r"^whsec_[A-Za-z0-9+/=]{16,}$")] | None = None


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
