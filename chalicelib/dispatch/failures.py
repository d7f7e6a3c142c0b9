"""How a failed attempt is told: an error class from a fixed set and a message the service writes itself.

An exception's text can quote a header value, the integrator's URL with its query string, or whatever a partner
put in its answer; it reaches sellers (the delivery's `last_error`), customers (the failure push), log lines and
SNS events. So none of it is ever kept: `connection_message` reads what kind of failure an exception is from its
types, never from its text. The integrator's own answer body stays in the attempt log, which only admins read.
"""

from __future__ import annotations

import socket
import ssl
from enum import StrEnum
from http.client import RemoteDisconnected

from urllib3.exceptions import NameResolutionError


class ErrorClass(StrEnum):
    TIMEOUT = "Timeout"  # no connection, or no whole answer, within the integrator's time
    CONNECTION = "ConnectionError"  # refused, reset, unresolvable, TLS: nothing was answered
    HTTP = "HTTPError"  # an answer that is not a 2xx (nor a redirect)
    REDIRECT = "Redirect"  # a 3xx: never followed
    BLOCKED = "BlockedAddress"  # the integrator's host resolves to an internal address
    TOKEN = "TokenError"  # the OAuth2 token endpoint gave no usable token
    RESPONSE_UNREADABLE = "ResponseUnreadable"  # the answer was cut short or malformed
    REQUEST = "RequestError"  # the request could not be built from the integrator's settings
    PAYLOAD_TEMPLATE = "payload_template_error"  # the template fails for this order: nothing was sent


TEMPLATE_FAILED = "the payload template failed for this order"
BLOCKED = "refused: the integrator's host resolves to an internal address"
UNREADABLE = "the answer was cut short or malformed"
REQUEST_UNBUILDABLE = "the request could not be built from the integrator's settings"


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and everything under it: chained exceptions, urllib3's `reason`, exceptions passed as arguments."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or any(current is known for known in seen):
            continue
        seen.append(current)
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return seen


def connection_message(exc: BaseException) -> str:
    """What kind of connection failure `exc` is, in the service's words."""
    causes = _causes(exc)
    kinds: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (ssl.SSLError, "TLS handshake failed"),
        (ConnectionRefusedError, "connection refused"),
        ((NameResolutionError, socket.gaierror), "host name did not resolve"),
        (RemoteDisconnected, "connection closed without an answer"),
        ((ConnectionResetError, BrokenPipeError), "connection reset"),
    ]
    for kind, message in kinds:
        if any(isinstance(cause, kind) for cause in causes):
            return message
    return "connection failed"
