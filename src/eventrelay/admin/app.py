"""The admin ASGI app: everything on the one port that is not the Tracking API."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from eventrelay.admin import api, config_api, metrics, openapi, page, replay_api, tester_api
from eventrelay.core.asgi import ASGIApp

# Each module exports ``routes(runtime) -> list[BaseRoute]``.
ROUTE_MODULES = (api, config_api, tester_api, replay_api, page, metrics, openapi)


def build_admin_app(runtime: Any) -> ASGIApp:
    async def health(request: Request) -> JSONResponse:
        """200 ``{"status": "ok"}``; 503 ``unhealthy`` naming the damaged store files and what to do."""
        answer = runtime.health()
        return JSONResponse(answer, status_code=200 if answer["status"] == "ok" else 503)

    routes: list[BaseRoute] = [Route("/healthz", health, methods=["GET"])]
    for module in ROUTE_MODULES:
        routes.extend(module.routes(runtime))
    return Starlette(routes=routes)
