"""Token admin routes: issue, list and revoke API tokens."""

from __future__ import annotations

from chalice.app import Request, Response

from chalicelib.api.http import RouteTable, json_response
from chalicelib.observability import logger

PREFIX = "/api/v1"
routes = RouteTable(PREFIX)


@routes.route("/tokens", ["POST"], admin_only=True)
def create_token(request: Request) -> Response:
    from chalicelib import tokens
    from chalicelib.validation import parse_model

    issued = tokens.issue_token(parse_model(request.raw_body, tokens.CreateTokenRequest))
    logger.info("token issued", extra={"token_id": issued.id, "role": issued.role})
    return json_response(issued.model_dump(mode="json"), 201, {"Location": f"{PREFIX}/tokens/{issued.id}"})


@routes.route("/tokens", ["GET"], admin_only=True)
def list_tokens(_request: Request) -> Response:
    from chalicelib import tokens

    return json_response({"items": [view.model_dump(mode="json") for view in tokens.list_tokens()]})


@routes.route("/tokens/{token_id}", ["DELETE"], admin_only=True)
def revoke_token(_request: Request, token_id: str) -> Response:
    from chalicelib import tokens
    from chalicelib.errors import NotFound

    if not tokens.revoke_token(token_id):
        raise NotFound(f"token {token_id} not found")
    logger.info("token revoked", extra={"token_id": token_id})
    return Response(body="", status_code=204)
