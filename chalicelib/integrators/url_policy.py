"""Which URLs the service may POST orders to: public https endpoints (plain http on loopback in the local stack)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from chalicelib.settings import get_settings


def internal_host(host: str) -> bool:
    """Loopback, private, link-local (the instance metadata address) and other non-public literal addresses."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def check_url(url: str) -> str:
    """The URL unchanged, or ValueError saying why it may not be used (a pydantic validator message)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if get_settings().allow_loopback_integrators:
        return url
    if internal_host(parts.hostname):
        raise ValueError("internal addresses (loopback, private, link-local) are only allowed in the local stack")
    if parts.scheme != "https":
        raise ValueError("must use https")
    return url
