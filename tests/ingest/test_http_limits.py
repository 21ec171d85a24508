"""Connection limits of the one port over real sockets, with the fast path on and off: a connection
that sends no head, half a head or half a body is closed after its time limit (408 for a body), an
idle kept-alive one after the keep-alive limit, an endless head at its size limit (431), and one
past the connection cap is answered 503 and closed, with one warning carrying the count; a normal
request is served throughout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest

from eventrelay.ingest.app import IngestApp
from eventrelay.ingest.http_limits import MAX_HEAD_BYTES, ConnectionLimits
from tests.ingest.conftest import FakeHost, basic, serve_ingest

HEAD_TIMEOUT = 1.0  # short limits so the tests are quick; the defaults are 10 s and 30 s
BODY_TIMEOUT = 1.5
KEEP_ALIVE = 0.5
MAX_CONNECTIONS = 8
SLACK = 5.0  # seconds a loaded 2-core machine may add before a close is seen
TRACK = orjson.dumps({"userId": "u1", "event": "Signed Up"})


@dataclass
class Limited:
    url: str
    host: FakeHost
    fast_path: bool

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.url.removeprefix("http://").split(":")
        return await asyncio.open_connection(host, int(port))


@pytest.fixture(params=[True, False], ids=["fast_path_on", "fast_path_off"])
async def limited(host: FakeHost, request: pytest.FixtureRequest) -> AsyncIterator[Limited]:
    limits = ConnectionLimits(head_timeout=HEAD_TIMEOUT, body_timeout=BODY_TIMEOUT, max_connections=MAX_CONNECTIONS)
    app = IngestApp(host)
    async with serve_ingest(app, fast_path=request.param, limits=limits, keep_alive=KEEP_ALIVE) as url:
        yield Limited(url, host, request.param)


def head(path: str = "/v1/track", length: int = len(TRACK), extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: ingest.test", f"Authorization: {basic().decode()}"]
    return ("\r\n".join(lines) + f"\r\n{extra}Content-Length: {length}\r\n\r\n").encode()


async def closed_after(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit + SLACK)
    return data, time.monotonic() - started


async def post_track(server: Limited) -> int:
    reader, writer = await server.connect()
    try:
        writer.write(head() + TRACK)
        status_line = await asyncio.wait_for(reader.readline(), SLACK)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(limited: Limited) -> None:
    reader, writer = await limited.connect()
    data, took = await closed_after(reader, HEAD_TIMEOUT)
    writer.close()
    assert data == b""  # no request, no answer
    assert took >= HEAD_TIMEOUT * 0.8
    assert await post_track(limited) == 200


async def test_a_head_trickled_byte_by_byte_is_cut_at_the_head_timeout(limited: Limited) -> None:
    reader, writer = await limited.connect()
    started = time.monotonic()
    for byte in head()[:-4]:  # never finished, but bytes keep coming
        if reader.at_eof() or writer.is_closing():
            break
        writer.write(bytes([byte]))
        try:
            await writer.drain()
        except ConnectionError:
            break
        if time.monotonic() - started > HEAD_TIMEOUT + SLACK:
            pytest.fail("the server kept a trickling head open past its time limit")
        await asyncio.sleep(0.05)
    data, _took = await closed_after(reader, HEAD_TIMEOUT)
    writer.close()
    assert data == b""
    assert time.monotonic() - started < HEAD_TIMEOUT + SLACK
    assert limited.host.routed == []


@pytest.mark.parametrize("kind", ["short_body", "endless_chunked"])
async def test_a_body_that_stops_is_answered_408_and_closed(limited: Limited, kind: str) -> None:
    reader, writer = await limited.connect()
    if kind == "short_body":
        writer.write(head(length=len(TRACK) + 100) + TRACK)  # fewer bytes than announced
    else:
        writer.write(head(length=0, extra="Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b""))
        writer.write(b"%x\r\n%s\r\n" % (len(TRACK), TRACK))  # and never the last chunk
    data, took = await closed_after(reader, BODY_TIMEOUT)
    writer.close()
    assert data.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in data.lower()
    body = orjson.loads(data.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "body_timeout" and body["error"]["field"] == "body"
    assert took >= BODY_TIMEOUT * 0.8
    assert await limited.host.stored() == []  # nothing half-received is stored
    assert await post_track(limited) == 200


async def test_a_request_sent_in_pieces_within_the_limits_is_served(limited: Limited) -> None:
    reader, writer = await limited.connect()
    raw = head() + TRACK
    middle = len(head()) // 2
    for piece in (raw[:middle], raw[middle : len(head()) + 5], raw[len(head()) + 5 :]):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(HEAD_TIMEOUT * 0.3)
    status_line = await asyncio.wait_for(reader.readline(), SLACK)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 200 ")
    assert len(await limited.host.stored()) == 1


async def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_limit(limited: Limited) -> None:
    reader, writer = await limited.connect()
    writer.write(head() + TRACK)
    await asyncio.wait_for(reader.readuntil(b'{"success":true}'), SLACK)
    data, took = await closed_after(reader, KEEP_ALIVE)
    writer.close()
    assert data == b""
    assert took < HEAD_TIMEOUT  # the keep-alive limit, not the head limit


async def test_connections_past_the_cap_get_503_and_one_warning_with_the_count(
    limited: Limited, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="eventrelay.ingest")
    idle = [await limited.connect() for _ in range(MAX_CONNECTIONS)]
    await asyncio.sleep(0.2)  # the server has accepted them
    refused = []
    for _ in range(3):
        reader, writer = await limited.connect()
        data = await asyncio.wait_for(reader.read(), SLACK)  # answered and closed at once
        writer.close()
        refused.append(data)
    for data in refused:
        assert data.startswith(b"HTTP/1.1 503 ")
        assert b"retry-after: 1\r\n" in data.lower()
        assert orjson.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_many_connections"
    warnings = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(warnings) == 1  # once per interval, however many are refused
    assert f"{MAX_CONNECTIONS} connections open, the limit is {MAX_CONNECTIONS}" in warnings[0]
    for _reader, writer in idle:
        writer.close()
    statuses = [await post_track(limited)]
    for _ in range(int(SLACK / 0.05)):
        if statuses[-1] == 200:
            break
        await asyncio.sleep(0.05)  # until the server has seen the closes
        statuses.append(await post_track(limited))
    assert statuses[-1] == 200


async def test_a_head_longer_than_the_limit_is_refused_431_however_slowly_it_comes(limited: Limited) -> None:
    reader, writer = await limited.connect()
    writer.write(b"POST /v1/track HTTP/1.1\r\nHost: ingest.test\r\nX-Padding: ")
    sent = 0
    try:
        while sent < 4 * MAX_HEAD_BYTES and not reader.at_eof():
            writer.write(b"a" * 8192)  # a header that never ends, well within the head timeout
            await writer.drain()
            sent += 8192
            await asyncio.sleep(0.005)
        data = await asyncio.wait_for(reader.read(), SLACK)
    except ConnectionError:
        data = b""  # closed with our bytes unread: the answer may be lost to the reset
    finally:
        writer.close()
    assert sent < 4 * MAX_HEAD_BYTES  # cut off, not read for ever
    if data:
        assert data.startswith(b"HTTP/1.1 431 ")
        assert orjson.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "head_too_large"
    assert await post_track(limited) == 200
