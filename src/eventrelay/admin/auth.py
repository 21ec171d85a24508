"""Bearer-token check for the admin API (constant-time compare; 401 JSON when missing or wrong)."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


def bearer_ok(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def unauthorized() -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "unauthorized", "message": "admin API needs 'Authorization: Bearer <admin token>'"}},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="eventrelay"'},
    )


def check(request: Request, runtime: Any) -> JSONResponse | None:
    """None when the request carries the admin token, else the 401 response to return."""
    return None if bearer_ok(request, runtime.admin_token) else unauthorized()
