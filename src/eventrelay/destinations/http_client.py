"""A lean HTTP/1.1 client for one origin: pooled keep-alive connections, answers parsed by httptools.

Why our own: per request, aiohttp's client costs ~270 us of CPU on this machine kind, this one
~30 us (the same C parser uvicorn uses, no middleware layers, one buffer written per request;
``bench/delivery_invoke.py`` prints both). On a 2-core machine that is the difference between
~3.5k and ~25k requests/s from one process, and it is most of the per-event cost of delivery.

What it does: ``request(method, target, headers, body)`` on a keep-alive connection taken from the
pool (LIFO: the warmest first), opened on demand up to ``max_connections`` (callers beyond it
wait for one to be released); TLS verified against a CA bundle (botocore's by default);
``Content-Length`` and chunked answers; answers without either end at close; a connection whose
answer said ``Connection: close``, or that was interrupted (cancelled, timed out, malformed), is
closed rather than reused. A request that finds its reused idle connection closed by the server
before any byte of an answer (the server's idle timeout racing our reuse) is sent once more on a
new connection: the server closed without reading it, so it was not processed.

What it does not do: proxies, redirects, compression, HTTP/2, ``Expect: 100-continue``. Time is
bounded by the caller (``asyncio.timeout``); every failure to get an answer is a ``TransportError``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from eventrelay.errors import TransportError

# Idle connections older than this are closed instead of reused. Servers close idle keep-alive
# connections after their own timeout (AWS's endpoints after about a minute of silence); reusing
# one that is about to be closed costs a resend, so stay under it.
KEEPALIVE_SECONDS = 50.0
# The largest answer kept. Lambda refuses synchronous responses over 6 MB itself (413 /
# ResponseSizeTooLarge), so anything bigger is not a Lambda answer; it fails the request rather
# than filling memory.
MAX_BODY_BYTES = 8 * 1024 * 1024
# The largest answer head (status line + headers). AWS's are well under 8 KB; bound a broken
# peer's.
MAX_HEAD_BYTES = 64 * 1024
# Bodies up to this size are copied into the request head (one write, one send syscall);
# larger ones are written as a second buffer instead of copied.
COALESCE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[bytes, bytes]  # raw: names in lower case; repeated headers joined with ", "
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value (decoded as Latin-1, as HTTP's bytes are), or None."""
        value = self.headers.get(name.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")


def host_header(url: str) -> str:
    """The ``Host`` value for a URL (and the ``host`` SigV4 signs): the hostname, plus the port
    when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class _Answer(asyncio.Protocol):
    """One connection: sends a request, parses its answer with httptools."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[HttpResponse] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.received = 0  # bytes of the current answer so far (0: none yet)
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

    def data_received(self, data: bytes) -> None:
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


class HttpClient:
    """Keep-alive HTTP/1.1 connections to the origin of ``base_url`` (``http`` or ``https``)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 0,  # 0: no limit (the caller bounds concurrency)
        user_agent: str = "",
        ca_bundle: str | None = None,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.tls = parts.scheme == "https"
        self.hostname = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.host_header = host_header(base_url)
        self.max_connections = max_connections
        self.max_body = max_body
        self._ca_bundle = ca_bundle
        self._ssl: ssl.SSLContext | None = None
        fixed = f"Host: {self.host_header}\r\n"
        if user_agent:
            fixed += f"User-Agent: {user_agent}\r\n"
        self._fixed = fixed
        self._idle: list[_Answer] = []
        self._open = 0  # connections open or opening, idle or busy
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def request(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> HttpResponse:
        """Send one request (``target``: path and query, already encoded) and read its answer."""
        lines = [f"{method} {target} HTTP/1.1\r\n", self._fixed]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        head = "".join(lines).encode("latin-1")
        for last_try in (False, True):
            conn, reused = await self._acquire(fresh=last_try)
            try:
                answer = await conn.send(head, body)
            except TransportError as exc:
                self._release(conn, reusable=False)
                if reused and not exc.answered and not last_try:
                    continue  # the server closed its idle connection without reading: resend once
                raise
            except BaseException:  # cancelled or timed out mid-request: the connection's state is unknown
                self._release(conn, reusable=False)
                raise
            self._release(conn, reusable=True)
            return answer
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._open -= len(idle)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(TransportError("the client is closed"))

    # -- the pool ---------------------------------------------------------------------------------
    async def _acquire(self, *, fresh: bool) -> tuple[_Answer, bool]:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise TransportError("the client is closed")
            if not fresh:
                now = loop.time()
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed and now - conn.idle_since < KEEPALIVE_SECONDS:
                        return conn, True
                    conn.close()
                    self._open -= 1
            elif self._idle and self.max_connections and self._open >= self.max_connections:
                self._idle.pop(0).close()  # a fresh connection is wanted: make room for it
                self._open -= 1
            if not self.max_connections or self._open < self.max_connections:
                self._open += 1
                try:
                    return await self._connect(loop), False
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the wake-up on to the next waiter
                raise

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Answer:
        try:
            _, conn = await loop.create_connection(
                lambda: _Answer(self.max_body),
                self.hostname,
                self.port,
                ssl=self._ssl_context() if self.tls else None,
                server_hostname=self.hostname if self.tls else None,
            )
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise TransportError(f"cannot connect to {self.hostname}:{self.port}: {reason}") from exc
        return conn

    def _release(self, conn: _Answer, *, reusable: bool) -> None:
        if reusable and not conn.closed and not self._closed:
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self._ca_bundle)
        return self._ssl
