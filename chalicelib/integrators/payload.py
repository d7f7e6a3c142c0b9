"""Payload templates: one JMESPath expression per integrator reshapes the body it receives (its own field names,
and no personal data it does not need). Declarative and side-effect free: a template can only select, rename,
filter and compute over the order, never reach anything else.

`render_body` is the one rendering function: the dispatcher sends and signs its bytes, the preview shows them.
Expressions are compiled once per template text and kept (jmespath is already imported by Powertools, so this
module adds nothing to a cold start).

A template is short, but what it yields need not be: `[@, @, ...]` ten times over, piped five times, turns one
item list into a million copies. So evaluation has a step budget, strings a function builds and the encoded body
are capped at MAX_BODY_BYTES (256 KB), and every way jmespath or Python's maths can refuse a value (floor of
infinity, a nesting too deep to evaluate) ends as a PayloadTemplateError: the delivery fails at once, nothing
crashes the dispatcher.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from jmespath.visitor import Options, TreeInterpreter

from chalicelib.domain.events import EventType
from chalicelib.domain.order import Order
from chalicelib.domain.sample_order import sample_order

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode

MAX_TEMPLATE_CHARS = 4096
MAX_BODY_BYTES = 256 * 1024  # a templated body, as encoded; the seed's shape is bounded by the order's own limits
MAX_STEPS = 200_000  # evaluation steps of one template (a 200-item order with a dozen fields takes ~5,000)
ERROR_CLASS = "payload_template_error"
OVER_CAP = "the template yields a body over 256 KB (262,144 bytes)"


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
    except RecursionError:
        raise PayloadTemplateError("the template is nested too deeply to parse") from None


def _encoded(value: Any, limit: int | None, message: str = OVER_CAP) -> bytes:
    """Compact UTF-8 JSON of `value`, streamed and abandoned as soon as it passes `limit` bytes (an object graph
    of shared references can encode to gigabytes: it is never built in full)."""
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in encoder.iterencode(value):
            part = chunk.encode()
            size += len(part)
            if limit is not None and size > limit:
                raise PayloadTemplateError(message)
            parts.append(part)
    except UnicodeEncodeError:
        raise PayloadTemplateError("the template yielded text that is not valid Unicode") from None
    except PayloadTemplateError:
        raise
    except ValueError:  # to_number("1e999") is infinity, which JSON cannot carry
        raise PayloadTemplateError("the template yielded a number JSON cannot carry (infinity or NaN)") from None
    except RecursionError:
        raise PayloadTemplateError("the template yielded a value nested too deeply to encode") from None
    return b"".join(parts)


class _BoundedFunctions(functions.Functions):
    """jmespath's functions, with what Python refuses (floor of infinity, ceil of NaN) turned into a template
    error naming the function, and strings they build held to the body's cap."""

    def call_function(self, function_name: str, resolved_args: Iterable[Any]) -> Any:
        try:
            result = super().call_function(function_name, resolved_args)
        except (PayloadTemplateError, JMESPathError):  # both ValueErrors: their own messages say it best
            raise
        except (ArithmeticError, ValueError):
            raise PayloadTemplateError(
                f"In function {function_name}(), a number that is infinite or not a number cannot be used"
            ) from None
        if isinstance(result, str) and len(result) > MAX_BODY_BYTES:
            raise PayloadTemplateError(f"In function {function_name}(), the text built is over 256 KB")
        return result

    @functions.signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        if isinstance(arg, str):
            return arg
        return _encoded(arg, MAX_BODY_BYTES, "In function to_string(), the text built is over 256 KB").decode()


class _BoundedInterpreter(TreeInterpreter):
    """jmespath's interpreter with a step budget: every node visited, and every element a flatten copies."""

    def __init__(self) -> None:
        super().__init__(Options(custom_functions=_BoundedFunctions()))
        self._steps = 0

    def _spend(self, steps: int) -> None:
        self._steps += steps
        if self._steps > MAX_STEPS:
            raise PayloadTemplateError(f"the template takes more than {MAX_STEPS:,} steps for this order")

    def visit(self, node: _TreeNode, *args: Any, **kwargs: Any) -> Any:
        self._spend(1)
        return super().visit(node, *args, **kwargs)

    def visit_flatten(self, node: _TreeNode, value: Any) -> Any:
        merged = super().visit_flatten(node, value)
        if isinstance(merged, list):
            self._spend(len(merged))
        return merged


def _evaluate(template: str, doc: dict[str, Any]) -> Any:
    try:
        return _BoundedInterpreter().visit(compile_template(template).parsed, doc)
    except PayloadTemplateError:
        raise
    except JMESPathError as exc:  # a function given the wrong type, an unknown function, a wrong arity
        raise PayloadTemplateError(str(exc)) from None
    except RecursionError:
        raise PayloadTemplateError("the template is nested too deeply to evaluate") from None


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
    result = _evaluate(template, document(order, event))
    if not isinstance(result, dict):
        raise PayloadTemplateError(f"the template must yield a JSON object; it yielded {_kind(result)}")
    return result


def encode(body: dict[str, Any], limit: int | None = None) -> bytes:
    """The exact bytes sent and signed: compact JSON, UTF-8 (at most `limit` bytes)."""
    return _encoded(body, limit)


def render_body(order: Order, event: str, template: str | None) -> bytes:
    """Render and serialise once: the dispatcher signs and sends these bytes, the preview shows them. A
    templated body is capped at MAX_BODY_BYTES."""
    return encode(render(order, event, template), MAX_BODY_BYTES if template is not None else None)


def check_template(template: str) -> str:
    """Accept a template only if it parses and yields an object for the sample order (a pydantic validator)."""
    render_body(sample_order(), EventType.CREATED, template)
    return template
