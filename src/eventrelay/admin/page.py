"""The Event Delivery web page at ``/`` and ``/admin``: a static HTML shell plus plain JS and CSS.

The shell holds no data and no secret; the script asks for the admin token once (or takes it
from the URL fragment ``#token=...``, which browsers never send to the server), keeps it in
``sessionStorage`` and calls the admin API with it. A strict Content-Security-Policy allows
only this origin's own script and style, so event data shown on the page cannot run as code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def routes(runtime: Any) -> list[BaseRoute]:
    return [
        Route("/", _index, methods=["GET"]),
        Route("/admin", _index, methods=["GET"]),
        Route("/favicon.ico", _favicon, methods=["GET"]),  # browsers ask for it whatever the page links
        Mount("/admin/static", app=StaticFiles(directory=STATIC_DIR), name="admin-static"),
    ]


async def _favicon(request: Request) -> Response:
    return FileResponse(
        STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
    )


async def _index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)
