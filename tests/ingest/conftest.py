"""Fixtures of the Tracking API tests: a fake host over the in-memory queue, a raw ASGI caller,
and the real app under uvicorn on a free port."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

from eventrelay.config.model import Config
from eventrelay.delivery.intake import QueueSink
from eventrelay.ingest.app import IngestApp
from eventrelay.ingest.fast_http import http_protocol
from eventrelay.ingest.http_limits import ConnectionLimits
from eventrelay.queue.memory import MemoryQueue
from tests.support.inprocess import serving_config

WRITE_KEY = "wk_test_0123456789abcdef"
DESTINATION = "lambda-test"
# The defaults of ``ingest`` in the Config (head 10 s, body 30 s), with a cap no test reaches.
LIMITS = ConnectionLimits(head_timeout=10.0, body_timeout=30.0, max_connections=1000)


class FakeHost:
    """The runtime as ingest sees it: one source, every event routed to one destination."""

    def __init__(self, queue: Any = None) -> None:
        self.queue = queue if queue is not None else MemoryQueue()
        self.sink = QueueSink(self.queue)
        self.sources = {WRITE_KEY: "web"}
        self.routed: list[Mapping[str, Any]] = []

    def source_for_key(self, write_key: str) -> str | None:
        return self.sources.get(write_key)

    def route(self, source: str, event: Mapping[str, Any]) -> tuple[str, ...]:
        self.routed.append(event)
        return (DESTINATION,)

    async def stored(self) -> list[dict[str, Any]]:
        """Every event stored so far (claims all jobs of the one destination)."""
        jobs = await self.queue.claim(DESTINATION, 100_000, 60)
        return [orjson.loads(j.body) for j in jobs]


def runtime_config(tmp_path: Path, ingest: dict[str, Any]) -> Config:
    """A Runtime's config with one source (``WRITE_KEY``), SQLite under ``tmp_path``, and ``ingest``."""
    return Config.model_validate(
        {
            "storage": {"backend": "sqlite", "path": str(tmp_path / "data")},
            "sources": [{"name": "web", "write_key": WRITE_KEY}],
            "ingest": ingest,
        }
    )


def basic(key: str = WRITE_KEY, password: str = "") -> bytes:
    return b"Basic " + base64.b64encode(f"{key}:{password}".encode())


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def json(self) -> Any:
        return orjson.loads(self.body)


async def call(
    app: Any,
    path: str,
    body: bytes | Any = b"",
    *,
    method: str = "POST",
    headers: Mapping[str, str | bytes] | None = None,
    auth: bytes | None = None,
    chunks: int = 1,
    client: tuple[str, int] | None = ("203.0.113.7", 50000),
) -> Answer:
    """One raw ASGI request; ``body`` that is not bytes is sent as JSON."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    hdrs: list[tuple[bytes, bytes]] = [(b"host", b"ingest.test:8088")]
    if auth is not None:
        hdrs.append((b"authorization", auth))
    for k, v in (headers or {}).items():
        hdrs.append((k.lower().encode(), v if isinstance(v, bytes) else v.encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": hdrs,
        "scheme": "http",
        "client": client,
        "query_string": b"",
        "http_version": "1.1",
    }
    size = max(1, -(-len(data) // chunks))
    parts = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    raw = list(start["headers"])
    return Answer(
        start["status"],
        {k.decode(): v.decode() for k, v in raw},
        b"".join(m.get("body", b"") for m in sent[1:]),
        raw,
    )


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def app(host: FakeHost) -> IngestApp:
    return IngestApp(host)


@dataclass
class LiveServer:
    url: str
    host: FakeHost


def serve_ingest(
    app: IngestApp, *, fast_path: bool, limits: ConnectionLimits = LIMITS, keep_alive: float = 5.0
) -> contextlib.AbstractAsyncContextManager[str]:
    """Run ``app`` under uvicorn on a free port with the protocol ``Runtime.server_config`` picks
    for ``ingest.fast_path`` (and ``limits``); yields its URL."""
    config = uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_level="warning",
        http=http_protocol(app, limits, fast_path=fast_path),
        ws="none",
        timeout_keep_alive=keep_alive,
    )
    return serving_config(config)


@pytest.fixture(params=[True, False], ids=["fast_path_on", "fast_path_off"])
async def live(host: FakeHost, request: pytest.FixtureRequest) -> AsyncIterator[LiveServer]:
    """The real ingest app under uvicorn on a free port, as ``eventrelay serve`` runs it with
    ``ingest.fast_path`` on (event POSTs on ``FastIngestProtocol``) and off (everything through ASGI):
    every test that takes this fixture runs both ways."""
    app = IngestApp(host)
    async with serve_ingest(app, fast_path=request.param) as url:
        yield LiveServer(url, host)
