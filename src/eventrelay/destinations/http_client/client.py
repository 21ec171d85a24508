"""A lean HTTP/1.1 client for one origin: pooled keep-alive connections, answers parsed by httptools.

Why our own: per request, aiohttp's client costs ~270 us of CPU on this machine kind, this one
~30 us (the same C parser uvicorn uses, no middleware layers, one buffer written per request;
``bench/delivery_invoke.py`` prints both). On a 2-core machine that is the difference between
~3.5k and ~25k requests/s from one process, and it is most of the per-event cost of delivery.

What it does: ``request(method, target, headers, body)`` (or ``handle(HttpRequest)``, the
``HttpTransport`` interface) on a keep-alive connection taken from the pool (LIFO: the warmest
first), opened on demand up to ``max_connections`` (callers beyond it wait for one to be
released); TLS verified against a CA bundle (botocore's by default); answers read by
``Connection`` (``connection.py``); a connection that was interrupted (cancelled, timed out,
malformed) is closed rather than reused. A request that finds its reused idle connection closed
by the server before any byte of an answer (the server's idle timeout racing our reuse) is sent
once more on a new connection: the server closed without reading it, so it was not processed.

Through a ``Proxy`` (``proxy.py``): an https origin through a ``CONNECT`` tunnel, an http one by
sending the absolute URL to the proxy.

What it does not do: redirects, compression, HTTP/2, ``Expect: 100-continue``. Time is bounded by
the caller (``asyncio.timeout``); every failure to get an answer is a ``TransportError``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from urllib.parse import urlsplit

from eventrelay.core.errors import TransportError
from eventrelay.destinations.http_client.connection import Connection
from eventrelay.destinations.http_client.proxy import Proxy
from eventrelay.destinations.http_client.transport import HttpRequest, HttpResponse, host_header

# Idle connections older than this are closed instead of reused. Servers close idle keep-alive
# connections after their own timeout (AWS's endpoints after about a minute of silence); reusing
# one that is about to be closed costs a resend, so stay under it.
KEEPALIVE_SECONDS = 50.0
# The largest answer kept. Lambda refuses synchronous responses over 6 MB itself (413 /
# ResponseSizeTooLarge), so anything bigger is not a Lambda answer; it fails the request rather
# than filling memory.
MAX_BODY_BYTES = 8 * 1024 * 1024


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
        proxy: Proxy | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.tls = parts.scheme == "https"
        self.hostname = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.host_header = host_header(base_url)
        self.origin = f"{parts.scheme}://{self.host_header}"  # as HttpRequest.origin spells it
        self.max_connections = max_connections
        self.max_body = max_body
        self._ca_bundle = ca_bundle
        self._ssl: ssl.SSLContext | None = None
        self.proxy = proxy
        self._forward = proxy is not None and not self.tls  # an http endpoint: absolute URLs to the proxy
        fixed = f"Host: {self.host_header}\r\n"
        if self._forward and proxy is not None and proxy.authorization:
            fixed += f"Proxy-Authorization: {proxy.authorization}\r\n"
        if user_agent:
            fixed += f"User-Agent: {user_agent}\r\n"
        self._fixed = fixed
        self._idle: list[Connection] = []
        self._open = 0  # connections open or opening, idle or busy
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """The ``HttpTransport`` interface: ``request`` for a request to this client's origin."""
        if request.origin != self.origin:
            raise TransportError(f"this client speaks to {self.origin}, not {request.origin}")
        return await self.request(request.method, request.target, request.headers, request.body)

    async def request(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> HttpResponse:
        """Send one request (``target``: path and query, already encoded) and read its answer."""
        if self._forward:
            target = f"http://{self.host_header}{target}"
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
    async def _acquire(self, *, fresh: bool) -> tuple[Connection, bool]:
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

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> Connection:
        proxy = self.proxy
        if proxy is None:
            try:
                _, conn = await loop.create_connection(
                    lambda: Connection(self.max_body),
                    self.hostname,
                    self.port,
                    ssl=self._ssl_context() if self.tls else None,
                    server_hostname=self.hostname if self.tls else None,
                )
            except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
                raise TransportError(f"cannot connect to {self.hostname}:{self.port}: {_reason(exc)}") from exc
            return conn
        try:
            _, conn = await loop.create_connection(lambda: Connection(self.max_body), proxy.host, proxy.port)
        except OSError as exc:
            raise TransportError(f"cannot connect to the proxy {proxy.host}:{proxy.port}: {_reason(exc)}") from exc
        if not self.tls:
            return conn
        try:
            await conn.open_tunnel(f"{self.hostname}:{self.port}", proxy.authorization)
            assert conn.transport is not None
            conn.transport = await loop.start_tls(
                conn.transport, conn, self._ssl_context(), server_hostname=self.hostname
            )
        except OSError as exc:  # TLS through the tunnel (SSLError), or the connection failed
            conn.close()
            raise TransportError(f"cannot reach {self.hostname}:{self.port} through the proxy: {_reason(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _release(self, conn: Connection, *, reusable: bool) -> None:
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


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
