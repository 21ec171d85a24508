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

Proxies as botocore uses them: ``HTTPS_PROXY`` / ``HTTP_PROXY`` by the endpoint's scheme, unless
``NO_PROXY`` covers its host (``proxy_from_environment``); an https endpoint is reached through a
``CONNECT`` tunnel (TLS end to end, verified against the endpoint's name), an http one by sending
the absolute URL to the proxy; ``user:password@`` in the proxy URL becomes Proxy-Authorization.

What it does not do: https:// proxy URLs (TLS to the proxy itself), redirects, compression,
HTTP/2, ``Expect: 100-continue``. Time is bounded by the caller (``asyncio.timeout``); every failure
to get an answer is a ``TransportError``.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httptools

from eventrelay.core.errors import TransportError

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
        return header_value(self.headers, name)


def header_value(headers: Mapping[bytes, bytes], name: str) -> str | None:
    """A header's value from raw lower-cased ``headers`` (decoded as Latin-1, as HTTP's bytes
    are), or None."""
    value = headers.get(name.lower().encode("latin-1"))
    return None if value is None else value.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Proxy:
    """An http:// proxy: where it listens, and the Proxy-Authorization value (None: none)."""

    host: str
    port: int
    authorization: str | None = None


def proxy_from_environment(url: str) -> Proxy | None:
    """The proxy for ``url`` from ``HTTPS_PROXY`` / ``HTTP_PROXY`` (by ``url``'s scheme) unless
    ``NO_PROXY`` covers its host, as botocore chooses; None for a direct connection. Raises
    ``ValueError`` naming the variable for a proxy URL this client cannot use."""
    parts = urlsplit(url)
    address = urllib.request.getproxies().get(parts.scheme)
    if not address or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxy = urlsplit(address if "://" in address else f"http://{address}")
    if proxy.scheme != "http" or not proxy.hostname:
        raise ValueError(
            f"{parts.scheme.upper()}_PROXY must be an http:// proxy URL (host and port); got scheme {proxy.scheme!r}"
        )
    authorization = None
    if proxy.username is not None:
        user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        authorization = "Basic " + base64.b64encode(user.encode()).decode()
    return Proxy(proxy.hostname, proxy.port or 80, authorization)


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
        self._idle: list[_Answer] = []
        self._open = 0  # connections open or opening, idle or busy
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

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
        proxy = self.proxy
        if proxy is None:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Answer(self.max_body),
                    self.hostname,
                    self.port,
                    ssl=self._ssl_context() if self.tls else None,
                    server_hostname=self.hostname if self.tls else None,
                )
            except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
                raise TransportError(f"cannot connect to {self.hostname}:{self.port}: {_reason(exc)}") from exc
            return conn
        try:
            _, conn = await loop.create_connection(lambda: _Answer(self.max_body), proxy.host, proxy.port)
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


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
