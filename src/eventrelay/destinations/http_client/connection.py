"""One keep-alive HTTP/1.1 connection: writes a request, parses its answer with httptools.

The answer is read as the C parser uvicorn uses reads it: ``Content-Length`` and chunked bodies,
and bodies with neither ending at close. A connection whose answer said ``Connection: close``,
that broke a limit (head or body size) or got a malformed answer closes itself; the pool
(``HttpClient``) does not reuse a closed one. Through a proxy, ``open_tunnel`` asks for a
``CONNECT`` tunnel first (TLS is then started over it by the pool).
"""

from __future__ import annotations

import asyncio

import httptools

from eventrelay.core.errors import TransportError
from eventrelay.destinations.http_client.transport import HttpResponse

# The largest answer head (status line + headers). AWS's are well under 8 KB; bound a broken
# peer's.
MAX_HEAD_BYTES = 64 * 1024
# Bodies up to this size are copied into the request head (one write, one send syscall);
# larger ones are written as a second buffer instead of copied.
COALESCE_BYTES = 64 * 1024


class Connection(asyncio.Protocol):
    """One connection: sends a request, parses its answer with httptools."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[HttpResponse] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.received = 0  # bytes of the current answer so far (0: none yet)
        self.tunnel: asyncio.Future[None] | None = None  # a CONNECT through a proxy, awaiting its answer
        self.tunnel_head = b""
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.head_done = False
        self.body: list[bytes] = []
        self.body_size = 0
        self.received = 0

    # -- sending ----------------------------------------------------------------------------
    def send(self, head: bytes, body: bytes) -> asyncio.Future[HttpResponse]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        if len(body) <= COALESCE_BYTES:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    async def open_tunnel(self, authority: str, authorization: str | None) -> None:
        """Ask the proxy on this connection for a tunnel to ``authority`` (host:port)."""
        assert self.transport is not None
        self.tunnel = asyncio.get_running_loop().create_future()
        auth = f"Proxy-Authorization: {authorization}\r\n" if authorization else ""
        self.transport.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n".encode("latin-1"))
        await self.tunnel

    def _tunnel_data(self, tunnel: asyncio.Future[None], data: bytes) -> None:
        head = self.tunnel_head = self.tunnel_head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_HEAD_BYTES:
                tunnel.set_exception(TransportError(f"the proxy's answer to CONNECT is over {MAX_HEAD_BYTES} bytes"))
            return
        status_line = head[: head.find(b"\r\n")].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[1].startswith("2") or end + 4 != len(head):
            tunnel.set_exception(TransportError(f"the proxy refused the tunnel: {status_line[:200]!r}"))
            return
        self.tunnel, self.tunnel_head = None, b""
        tunnel.set_result(None)

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None and not tunnel.done():
            self._tunnel_data(tunnel, data)
            return
        if self.waiter is None:  # nothing asked: a server speaking out of turn is not trusted
            self.close()
            return
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed HTTP answer: {exc}"))
            return
        if not self.head_done and self.received > MAX_HEAD_BYTES:
            self._fail(TransportError(f"the answer's head is over {MAX_HEAD_BYTES} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        tunnel = self.tunnel
        if tunnel is not None and not tunnel.done():
            tunnel.set_exception(TransportError("the proxy closed the connection before the tunnel was open"))
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.head_done and self._ends_at_close():
            self.on_message_complete()  # an answer with no length ends when the connection does
            return
        reason = f": {exc}" if exc else ""
        error = TransportError(f"the connection closed before the answer was complete{reason}")
        error.answered = self.received > 0
        self.waiter = None
        waiter.set_exception(error)

    # -- httptools callbacks --------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        previous = self.headers.get(key)
        self.headers[key] = value if previous is None else previous + b", " + value

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.head_done = True

    def on_body(self, chunk: bytes) -> None:
        self.body_size += len(chunk)
        if self.body_size > self.max_body:
            self._fail(TransportError(f"the answer is over {self.max_body} bytes"))
            return
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if not self.parser.should_keep_alive():
            self.close()
        answer = HttpResponse(self.status, self.headers, b"".join(self.body))
        self.waiter = None
        self._reset()
        waiter.set_result(answer)

    # -- internals ----------------------------------------------------------------------------
    def _ends_at_close(self) -> bool:
        return b"content-length" not in self.headers and b"chunked" not in self.headers.get(b"transfer-encoding", b"")

    def _fail(self, error: TransportError) -> None:
        error.answered = True
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
