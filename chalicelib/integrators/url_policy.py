"""Which URLs the service may POST orders to: public https endpoints (plain http on loopback in the local stack).

An address is judged after normalising every spelling a resolver accepts (`2130706433`, `0x7f000001`, `0177.1`,
`127.1`, `::ffff:127.0.0.1`), an IPv6 address that carries an IPv4 one (NAT64 `64:ff9b::7f00:1`, 6to4
`2002:7f00:1::`, Teredo) also by the IPv4 address it leads to, and a name by every address it resolves to: at
registration here, and again when each connection is made (`dispatch.egress`), so a name that later resolves
inward is still refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from chalicelib.settings import get_settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048
# What the API documents and enforces before any semantic check: no whitespace, control characters or userinfo.
URL_PATTERN = r"^https?://[^\s@/?#\\\x00-\x1f\x7f]+(?:[/?#][^\s\x00-\x1f\x7f]*)?$"
_URL = re.compile(URL_PATTERN)


class BlockedAddress(Exception):
    """A host that is, or resolves to, an address the service must not call."""


def literal_address(host: str) -> Address | None:
    """The address a literal host spells, in any notation the C resolver accepts, else None (a name)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not re.fullmatch(r"[0-9a-fA-FxX.]+", host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


# IPv6 prefixes whose addresses carry an IPv4 address a translator or tunnel delivers to (RFC 6052, 8215, 3056,
# 4380, 4291): (prefix, offset in bits of the embedded IPv4 from the left, XOR mask of its bits).
_CARRIES_IPV4: tuple[tuple[ipaddress.IPv6Network, int, int], ...] = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), 96, 0),  # IPv4-mapped
    (ipaddress.IPv6Network("::/96"), 96, 0),  # IPv4-compatible (deprecated)
    (ipaddress.IPv6Network("64:ff9b::/96"), 96, 0),  # NAT64, well-known prefix
    (ipaddress.IPv6Network("64:ff9b:1::/48"), 96, 0),  # NAT64, local use (RFC 6052 /96 layout)
    (ipaddress.IPv6Network("2002::/16"), 16, 0),  # 6to4
    (ipaddress.IPv6Network("2001::/32"), 96, 0xFFFFFFFF),  # Teredo client, obfuscated
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address of a translation or tunnelling prefix leads to, else None."""
    for network, offset, mask in _CARRIES_IPV4:
        if address in network:
            bits = (int(address) >> (96 - offset)) & 0xFFFFFFFF
            return ipaddress.IPv4Address(bits ^ mask)
    return None


def internal_address(address: Address) -> bool:
    """Loopback, private, link-local (instance metadata), unique-local, shared, multicast, reserved or unspecified;
    an IPv6 address that carries an IPv4 address (NAT64, 6to4, Teredo, mapped) is internal when that one is."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif carried is not None and _internal(carried):
            return True
    return _internal(address)


def _internal(address: Address) -> bool:
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
    )


def internal_host(host: str) -> bool:
    """True for `localhost` names and literal internal addresses (names are judged by `resolve_public`)."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = literal_address(name)
    return address is not None and internal_address(address)


def resolve_public(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to, all public, or BlockedAddress; socket.gaierror when it does not resolve."""
    if internal_host(host):
        raise BlockedAddress(f"{host} is an internal address")
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if internal_address(address):
            raise BlockedAddress(f"{host} resolves to an internal address")
        if address not in found:
            found.append(address)
    return found


def check_url(url: str) -> str:
    """The URL unchanged, or ValueError saying why it may not be used (a pydantic validator message)."""
    if len(url) > MAX_URL_LENGTH or not _URL.fullmatch(url):
        raise ValueError("must be an absolute http(s) URL without spaces, control characters or user info")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if get_settings().allow_loopback_integrators:
        return url
    if parts.scheme != "https":
        raise ValueError("must use https")
    try:
        resolve_public(parts.hostname, port or 443)
    except BlockedAddress:
        raise ValueError(
            "internal addresses (loopback, private, link-local) are only allowed in the local stack"
        ) from None
    except (OSError, UnicodeError):
        # Not resolvable yet (a partner may register before its DNS is live): every connection is checked anyway.
        pass
    return url
