"""Turning request bytes into models, with errors a client can act on field by field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.errors import InvalidInput, MalformedRequest, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024
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


def parse_json(raw: bytes | str | None) -> Any:
    if not raw:
        raise MalformedRequest("request body is empty; send a JSON document")
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
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
