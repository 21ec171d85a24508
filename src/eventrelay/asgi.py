"""ASGI types and the one-port composition: /v1/* to the Tracking API, the rest to the admin app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def one_port(ingest: ASGIApp, admin: ASGIApp) -> ASGIApp:
    """Route ``/v1/...`` straight to the lean ingest app (no framework on the hot path)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await ingest(scope, receive, send)
        else:
            await admin(scope, receive, send)

    return app
