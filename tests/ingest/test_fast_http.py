"""The Tracking API's fast path (``FastIngestProtocol`` in uvicorn) over real sockets: it takes the
plain event POSTs, answers exactly as the ASGI path does, leaves CORS / Expect / chunked /
forwarded requests to uvicorn, and keeps keep-alive, pipelining and Connection: close right."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventrelay.config.model import Ingest
from eventrelay.ingest.app import IngestApp
from eventrelay.ingest.fast_http import FastIngestProtocol
from eventrelay.ingest.http_limits import LimitedHttpProtocol
from eventrelay.queue.memory import MemoryQueue
from eventrelay.runtime import Runtime
from tests.ingest.conftest import WRITE_KEY, FakeHost, basic, runtime_config, serve_ingest
from tests.support.inprocess import serving_config

TRACK = orjson.dumps({"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}})


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Servers:
    host: FakeHost
    fast: str
    plain: str
    taken: list[Any]


def spy_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The requests ``FastIngestProtocol`` takes from now on (the list fills as they come)."""
    taken: list[Any] = []
    accept = FastIngestProtocol._accept

    def spy(self: FastIngestProtocol, cycle: Any) -> None:
        taken.append(cycle)
        accept(self, cycle)

    monkeypatch.setattr(FastIngestProtocol, "_accept", spy)
    return taken


@pytest.fixture
async def servers(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Servers]:
    """The same app served twice: with the fast path on (as ``eventrelay serve``) and off (ASGI only)."""
    taken = spy_on_the_fast_path(monkeypatch)
    app = IngestApp(host)
    async with serve_ingest(app, fast_path=True) as fast_url, serve_ingest(app, fast_path=False) as plain_url:
        yield Servers(host, fast_url, plain_url, taken)


def request(path: str, body: bytes, headers: dict[str, str | bytes] | None = None, *, length: bool = True) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: ingest.test"]
    for name, value in (headers or {}).items():
        head.append(f"{name}: {value.decode() if isinstance(value, bytes) else value}")
    if length:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
    return Reply(status, headers, body)


async def exchange(url: str, *raw: bytes) -> list[Reply]:
    """Write every request in ONE write (pipelined when several) and read as many answers."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"".join(raw))
        await writer.drain()
        replies = []
        for _ in raw:
            reply = await read_reply(reader)
            while reply.status == 100:  # "100 Continue" to an Expect header; the answer follows
                reply = await read_reply(reader)
            replies.append(reply)
        return replies
    finally:
        writer.close()


AUTH = {"Authorization": basic()}
CASES = [
    ("/v1/track", TRACK, AUTH),
    ("/v1/t", TRACK, AUTH),
    ("/v1/track", orjson.dumps({"userId": "u1"}), AUTH),  # no event: 400 naming the field
    ("/v1/track", TRACK, {"Authorization": basic("wk_unknown_key_000000")}),  # 401
    ("/v1/track", b'{"userId":', AUTH),  # malformed JSON
    ("/v1/track", b"x" * 40_000, AUTH),  # over the 32 KB event limit
    ("/v1/identify", gzip.compress(orjson.dumps({"userId": "u1", "traits": {}})), {**AUTH, "Content-Encoding": "gzip"}),
    ("/v1/batch", orjson.dumps({"batch": [{"type": "track", "userId": "a", "event": "x"}, {"type": "track"}]}), AUTH),
    ("/v1/batch", orjson.dumps({"batch": [{"type": "track"}]}), AUTH),  # every item refused: 400
    ("/v1/batch", orjson.dumps({"writeKey": WRITE_KEY, "batch": [{"type": "page", "userId": "b"}]}), {}),
]


@pytest.mark.parametrize(("path", "body", "headers"), CASES)
async def test_the_fast_path_answers_as_the_asgi_path_does(
    servers: Servers, path: str, body: bytes, headers: dict[str, str | bytes]
) -> None:
    (fast,) = await exchange(servers.fast, request(path, body, headers))
    assert len(servers.taken) == 1  # it did take the fast path
    (plain,) = await exchange(servers.plain, request(path, body, headers))
    assert len(servers.taken) == 1
    assert (fast.status, orjson.loads(fast.body)) == (plain.status, orjson.loads(plain.body))
    for name in ("content-type", "access-control-allow-origin", "retry-after"):
        assert fast.headers.get(name) == plain.headers.get(name)


async def test_events_taken_by_the_fast_path_are_stored_with_the_peer_address(servers: Servers) -> None:
    replies = await exchange(servers.fast, request("/v1/track", TRACK, AUTH), request("/v1/track", TRACK, AUTH))
    assert [r.status for r in replies] == [200, 200]
    stored = await servers.host.stored()
    assert len(stored) == 2 and {e["context"]["ip"] for e in stored} == {"127.0.0.1"}
    assert all(e["event"] == "Signed Up" and e["messageId"] for e in stored)


@pytest.mark.parametrize(
    "extra",
    [
        {"Origin": "https://shop.example"},
        {"Expect": "100-continue"},
        {"X-Forwarded-For": "198.51.100.9"},
    ],
)
async def test_cors_expect_and_forwarded_requests_take_the_ordinary_path(
    servers: Servers, extra: dict[str, str]
) -> None:
    (reply,) = await exchange(servers.fast, request("/v1/track", TRACK, {**AUTH, **extra}))
    assert reply.status == 200 and servers.taken == []
    if "Origin" in extra:
        assert reply.headers["access-control-allow-origin"] == "https://shop.example"


async def test_a_chunked_body_takes_the_ordinary_path(servers: Servers) -> None:
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(TRACK), TRACK)
    raw = request("/v1/track", chunked, {**AUTH, "Transfer-Encoding": "chunked"}, length=False)
    (reply,) = await exchange(servers.fast, raw)
    assert reply.status == 200 and servers.taken == []
    assert len(await servers.host.stored()) == 1


async def test_pipelined_requests_are_answered_in_order(servers: Servers) -> None:
    bad = request("/v1/track", orjson.dumps({"userId": "u1"}), AUTH)
    good = request("/v1/track", TRACK, AUTH)
    replies = await exchange(servers.fast, good, bad, good, request("/v1/batch", b"{}", AUTH))
    assert [r.status for r in replies] == [200, 400, 200, 400]
    assert len(await servers.host.stored()) == 2


async def test_connection_close_is_honoured(servers: Servers) -> None:
    host, port = servers.fast.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request("/v1/track", TRACK, {**AUTH, "Connection": "close"}))
    reply = await read_reply(reader)
    assert reply.status == 200 and reply.headers.get("connection") == "close"
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the server closed it
    writer.close()
    assert len(servers.taken) == 1


async def test_a_full_store_is_a_429_with_retry_after_on_the_fast_path() -> None:
    host = FakeHost(MemoryQueue(max_events=1))
    app = IngestApp(host)
    async with serve_ingest(app, fast_path=True) as url:
        replies = await exchange(url, request("/v1/track", TRACK, AUTH), request("/v1/track", TRACK, AUTH))
    assert [r.status for r in replies] == [200, 429]
    assert int(replies[1].headers["retry-after"]) >= 1
    assert orjson.loads(replies[1].body)["error"]["code"] == "queue_full"


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast_path_on", "fast_path_off"])
async def test_runtime_server_config_honours_ingest_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_path: bool
) -> None:
    """``ingest.fast_path`` decides whether ``eventrelay serve`` answers event POSTs without ASGI;
    either way the answer is the same and the event is stored."""
    taken = spy_on_the_fast_path(monkeypatch)
    assert Ingest().fast_path is True  # the default
    runtime = Runtime(runtime_config(tmp_path, {"fast_path": fast_path}), role="ingest")
    await runtime.start()
    try:
        config = runtime.server_config()
        assert issubclass(config.http, LimitedHttpProtocol)  # the connection limits either way
        assert issubclass(config.http, FastIngestProtocol) is fast_path
        async with serving_config(config) as url:
            (reply,) = await exchange(url, request("/v1/track", TRACK, AUTH))
        assert (reply.status, orjson.loads(reply.body)) == (200, {"success": True})
        assert len(taken) == (1 if fast_path else 0)
    finally:
        await runtime.stop()
