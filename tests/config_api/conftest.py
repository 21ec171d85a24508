"""A real Runtime (SQLite storage in tmp_path) and a small in-process ASGI client for its admin API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventrelay.config.load import validate_config
from eventrelay.config.model import Config
from eventrelay.config.store import merge_api_entities
from eventrelay.runtime import Runtime

TOKEN = "admin-token-for-tests-0123456789"
ROLE = "arn:aws:iam::123456789012:role/eventrelay-invoke"
FILE_KEY = "file-write-key-0123456789"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Calls an ASGI app in-process, the way an HTTP client would (bearer token by default)."""

    def __init__(self, app: Any, token: str | None = TOKEN) -> None:
        self.app = app
        self.token = token

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "default",
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        sent_headers = [(b"content-type", b"application/json")]
        use = self.token if token == "default" else token
        if use is not None:
            sent_headers.append((b"authorization", f"Bearer {use}".encode()))
        sent_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": sent_headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8088),
        }
        sent = False
        out: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return Answer(out["status"], out["headers"], out["body"])

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.request("PATCH", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Answer:
        return await self.request("DELETE", path, **kw)


def file_config(tmp_path: Path, **extra: Any) -> Config:
    """What the configuration file says: one source, one destination (both managed by the file)."""
    data: dict[str, Any] = {
        "workspace": {"id": "ws_123"},
        "storage": {"path": str(tmp_path / "data")},
        "admin": {"token": TOKEN, "endpoint_allow_list": ["localhost:4566", "vpce.internal"]},
        "sources": [{"name": "web", "write_key": FILE_KEY}],
        "destinations": [
            {
                "name": "file-dest",
                "settings": {"lambda": "my-fn", "region": "us-west-2", "role_address": ROLE},
            }
        ],
    }
    data.update(extra)
    return validate_config(data)


def lambda_destination(name: str = "api-dest", **settings: Any) -> dict[str, Any]:
    return {
        "name": name,
        "settings": {"lambda": "my-fn:live", "region": "us-west-2", "role_address": ROLE, **settings},
    }


StartRuntime = Callable[[Config], Awaitable[tuple[Runtime, Client]]]


@pytest.fixture
async def start_runtime() -> AsyncIterator[StartRuntime]:
    """Start a Runtime as ``serve`` does (file config + stored API entities); stopped at the end."""
    started: list[Runtime] = []

    async def start(config: Config) -> tuple[Runtime, Client]:
        runtime = Runtime(merge_api_entities(config))
        await runtime.start()
        started.append(runtime)
        return runtime, Client(runtime.asgi())

    yield start
    for runtime in started:
        await runtime.stop()


@pytest.fixture
async def api(tmp_path: Path, start_runtime: StartRuntime) -> tuple[Runtime, Client]:
    return await start_runtime(file_config(tmp_path))
