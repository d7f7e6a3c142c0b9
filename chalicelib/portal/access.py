"""Who may use the integrator portal: single-use links an admin issues, the sessions they open, revocation, and
the record of what each session did.

A link (`pln_<id>_<secret>`) and a session (`prt_<id>_<secret>`) are rows of the tokens table keyed by their public
id, holding only the SHA-256 of the secret part, the integrator and the scopes. They are not API tokens: the
bearer authorizer never accepts them (its format is `orl_...`), and the portal's routes accept nothing else. A
session is checked on every request with two GetItems (its row and the integrator's revocation mark), so a
revocation takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.exceptions import UpdateError

from chalicelib.db.concurrency import condition_failed
from chalicelib.db.records import TokenRecord, ensure_bound
from chalicelib.domain import clock
from chalicelib.domain.clock import iso
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.portal.scopes import Scope
from chalicelib.settings import get_settings

LINK = re.compile(r"^(pln_[0-9a-f]{16})_([A-Za-z0-9_-]{20,128})$")
SESSION = re.compile(r"^(prt_[0-9a-f]{16})_([A-Za-z0-9_-]{20,128})$")
LINK_ROLE = "portal_link"
SESSION_ROLE = "portal_session"
REVOCATION_ROLE = "portal_revocation"


class PortalLinkRequest(BaseModel):
    """Which actions the link's session may take besides looking (`view` is always granted)."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[Scope] = Field(default_factory=list, max_length=4)


class OpenSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=200)


@dataclass(frozen=True)
class PortalSession:
    """An open portal session: everything a portal route may know about its caller."""

    session_id: str
    integrator: str
    scopes: frozenset[Scope]
    expires_at: str

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this portal session may not {scope.value.replace('_', ' ')}: ask for a link with it")

    def view(self) -> dict[str, Any]:
        return {
            "integrator": self.integrator,
            "scopes": sorted(s.value for s in self.scopes),
            "expires_at": self.expires_at,
            "session_id": self.session_id,
        }


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new(prefix: str) -> tuple[str, str]:
    """(public id, whole token)."""
    public = f"{prefix}_{secrets.token_hex(8)}"
    return public, f"{public}_{secrets.token_urlsafe(32)}"


def issue_link(integrator: str, request: PortalLinkRequest, base_url: str) -> dict[str, Any]:
    """A single-use link into `integrator`'s portal; the code rides in the URL's fragment, which browsers never
    send to a server (so it reaches no access log)."""
    ensure_bound()
    scopes = sorted({Scope.VIEW, *request.scopes})
    public, code = _new("pln")
    now = clock.utcnow()
    expires = iso(now + timedelta(seconds=get_settings().portal_link_seconds))
    TokenRecord(
        token_id=public,
        secret_sha256=_digest(code[len(public) + 1 :]),
        role=LINK_ROLE,
        integrator=integrator,
        scopes=[s.value for s in scopes],
        created_at=iso(now),
        expires_at=expires,
    ).save(condition=TokenRecord.token_id.does_not_exist())
    return {
        "url": f"{base_url}/portal#code={code}",
        "integrator": integrator,
        "scopes": [s.value for s in scopes],
        "expires_at": expires,
    }


def open_session(code: str) -> dict[str, Any]:
    """Exchange a link's code for a session, once: the link is spent by a conditional write, so two browsers
    opening it at the same moment get one session between them."""
    ensure_bound()
    refused = Unauthorized("this portal link is not valid: it was already opened, has expired or was revoked")
    match = LINK.match(code)
    if match is None:
        raise refused
    try:
        link = TokenRecord.get(match.group(1))
    except TokenRecord.DoesNotExist:
        raise refused from None
    if link.role != LINK_ROLE or not hmac.compare_digest(_digest(match.group(2)), link.secret_sha256):
        raise refused
    revoked_before = _revoked_before(str(link.integrator))
    if revoked_before is not None and link.created_at <= revoked_before:
        raise refused
    now = clock.utcnow()
    try:
        link.update(
            actions=[TokenRecord.revoked_at.set(iso(now))],
            condition=TokenRecord.revoked_at.does_not_exist() & (TokenRecord.expires_at > iso(now)),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise refused from None
        raise
    public, token = _new("prt")
    expires = iso(now + timedelta(seconds=get_settings().portal_session_seconds))
    TokenRecord(
        token_id=public,
        secret_sha256=_digest(token[len(public) + 1 :]),
        role=SESSION_ROLE,
        integrator=link.integrator,
        scopes=link.scopes,
        label=link.token_id,
        created_at=iso(now),
        expires_at=expires,
    ).save(condition=TokenRecord.token_id.does_not_exist())
    return {
        "token": token,
        "integrator": link.integrator,
        "scopes": link.scopes,
        "expires_at": expires,
        "session_id": public,
    }


def authenticate(authorization: str | None) -> PortalSession:
    """The session an `Authorization: Bearer prt_...` header names, if it is open; else 401."""
    ensure_bound()
    refused = Unauthorized("missing, expired or revoked portal session; open a new portal link")
    scheme, _, token = (authorization or "").partition(" ")
    match = SESSION.match(token.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        raise refused
    try:
        row = TokenRecord.get(match.group(1))
    except TokenRecord.DoesNotExist:
        raise refused from None
    now = iso()
    if (
        row.role != SESSION_ROLE
        or not row.integrator
        or not hmac.compare_digest(_digest(match.group(2)), row.secret_sha256)
        or row.revoked_at is not None
        or (row.expires_at or "") <= now
    ):
        raise refused
    revoked_before = _revoked_before(row.integrator)
    if revoked_before is not None and row.created_at <= revoked_before:
        raise refused
    return PortalSession(
        session_id=row.token_id,
        integrator=row.integrator,
        scopes=frozenset(Scope(s) for s in row.scopes or [] if s in Scope.__members__.values()),
        expires_at=row.expires_at or now,
    )


def _revocation_id(integrator: str) -> str:
    return f"portal-revoked#{integrator}"


def _revoked_before(integrator: str) -> str | None:
    try:
        return str(TokenRecord.get(_revocation_id(integrator)).created_at)
    except TokenRecord.DoesNotExist:
        return None


def revoke_sessions(integrator: str) -> dict[str, Any]:
    """End every session of `integrator` opened until now (one write: a mark every session check reads), and
    every link not yet opened."""
    ensure_bound()
    now = iso()
    TokenRecord(
        token_id=_revocation_id(integrator),
        secret_sha256="",
        role=REVOCATION_ROLE,
        integrator=integrator,
        created_at=now,
    ).save()
    return {"integrator": integrator, "revoked_before": now}


def sign_out(session: PortalSession) -> None:
    ensure_bound()
    TokenRecord(token_id=session.session_id).update(actions=[TokenRecord.revoked_at.set(iso())])
