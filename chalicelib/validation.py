"""Turning request bytes into models, with errors a client can act on field by field."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.errors import InvalidInput, MalformedRequest, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024
# Arrays and objects nested deeper than this are refused before parsing: Python's parser recurses (a 64 KB body
# of `[` is a RecursionError, a 500) and DynamoDB refuses documents nested past 32 levels. No request of this API
# needs more than 5; callback `details` get the rest.
MAX_JSON_DEPTH = 16
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
ModelT = TypeVar("ModelT", bound=BaseModel)


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or None
        details.append({"field": field, "message": error["msg"], "type": error["type"]})
    return details


def not_json(constant: str) -> Any:
    """Python's json accepts NaN and Infinity; JSON does not, and neither does DynamoDB."""
    raise json.JSONDecodeError(f"{constant} is not a JSON value", constant, 0)


def check_depth(raw: bytes) -> None:
    """MalformedRequest when arrays and objects nest deeper than MAX_JSON_DEPTH. One pass over the bytes outside
    strings, without parsing (so without recursion); it stops at the first level too deep."""
    depth = 0
    for bracket in _STRING.sub(b"", raw).translate(None, _NOT_A_BRACKET):
        if bracket in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise MalformedRequest(
                    f"request body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels",
                    [{"field": None, "message": f"at most {MAX_JSON_DEPTH} levels", "type": "json_too_deep"}],
                )
        else:
            depth -= 1


def parse_json(raw: bytes | str | None) -> Any:
    if not raw:
        raise MalformedRequest("request body is empty; send a JSON document")
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
    check_depth(raw)
    try:
        return json.loads(raw, parse_constant=not_json)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedRequest("request body is not valid JSON", [{"field": None, "message": str(exc)}]) from None


def parse_model(raw: bytes | str | None, model: type[ModelT]) -> ModelT:
    return validate(parse_json(raw), model)


def validate(data: Any, model: type[ModelT]) -> ModelT:
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object", [{"field": None, "message": "expected an object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid {model.__name__}", field_errors(exc)) from None
