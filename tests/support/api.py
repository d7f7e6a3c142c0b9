"""The test client every functional test talks through: `chalice.test.Client` with JSON helpers and a token,
and the names the fixtures provision under (tests/conftest.py)."""

from __future__ import annotations

import json
from typing import Any

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
STAGE = "test"


class Api:
    """`chalice.test.Client` with JSON helpers and a default token."""

    def __init__(self, client: Any, token: str) -> None:
        self._client = client
        self.token = token

    def as_(self, token: str) -> Api:
        return Api(self._client, token)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> Any:
        all_headers = {"Content-Type": "application/json"}
        effective = self.token if token is None else token
        if effective:
            all_headers["Authorization"] = f"Bearer {effective}"
        all_headers.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        return self._client.http.request(method, path, headers=all_headers, body=data)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)
