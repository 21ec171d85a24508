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
    routes: list[BaseRoute] = [Route("/healthz", _health, methods=["GET"])]
    for module in ROUTE_MODULES:
        routes.extend(module.routes(runtime))
    return Starlette(routes=routes)


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})
