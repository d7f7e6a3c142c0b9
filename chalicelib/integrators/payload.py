"""Payload templates: one JMESPath expression per integrator reshapes the body it receives (its own field names,
and no personal data it does not need). Declarative and side-effect free: a template can only select, rename,
filter and compute over the order, never reach anything else.

`render_body` is the one rendering function: the dispatcher sends and signs its bytes, the preview shows them.
Expressions are compiled once per template text and kept (jmespath is already imported by Powertools, so this
module adds nothing to a cold start).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from chalicelib.domain.events import EventType
from chalicelib.domain.order import Order
from chalicelib.domain.sample_order import sample_order

MAX_TEMPLATE_CHARS = 4096
ERROR_CLASS = "payload_template_error"


class PayloadTemplateError(ValueError):
    """This template cannot produce a body for this order. The message is jmespath's own (or says what the
    template yielded instead of an object): safe to show an admin, it holds no secret.

    A ValueError, so a pydantic validator that raises it becomes a 422 on the `payload_template` field."""


@lru_cache(maxsize=256)
def compile_template(template: str) -> ParsedResult:
    """Parse once per template text; a changed template is a new text, so nothing stale is ever reused."""
    try:
        return jmespath.compile(template)
    except JMESPathError as exc:
        raise PayloadTemplateError(str(exc)) from None


def document(order: Order, event: str) -> dict[str, Any]:
    """What a template is evaluated over: the seed's shape with the event added."""
    return {"event": str(event), **order.integrator_payload()}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def render(order: Order, event: str, template: str | None) -> dict[str, Any]:
    """The body as an object: the seed's shape without a template, else what the template yields."""
    if template is None:
        return order.integrator_payload()
    try:
        result = compile_template(template).search(document(order, event))
    except JMESPathError as exc:  # a function given the wrong type, an unknown function, a wrong arity
        raise PayloadTemplateError(str(exc)) from None
    if not isinstance(result, dict):
        raise PayloadTemplateError(f"the template must yield a JSON object; it yielded {_kind(result)}")
    return result


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, UTF-8."""
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError:  # to_number("1e999") is infinity, which JSON cannot carry
        raise PayloadTemplateError("the template yielded a number JSON cannot carry (infinity)") from None


def render_body(order: Order, event: str, template: str | None) -> bytes:
    """Render and serialise once: the dispatcher signs and sends these bytes, the preview shows them."""
    return encode(render(order, event, template))


def check_template(template: str) -> str:
    """Accept a template only if it parses and yields an object for the sample order (a pydantic validator)."""
    render_body(sample_order(), EventType.CREATED, template)
    return template
