"""Connection limits of the one port: time limits on a request's head and body, a cap on open connections.

uvicorn closes a kept-alive connection that stays idle (its ``timeout_keep_alive``, set from
``ingest.keep_alive_timeout``) and nothing else: a connection that sends no bytes, half a head, or
a body shorter than its Content-Length is held open for ever, and enough of them take every file
descriptor, after which new connections fail without a word. ``LimitedHttpProtocol`` (uvicorn's
httptools protocol, subclassed; ``FastIngestProtocol`` extends it, so the fast path and the ASGI
path have the same limits) adds:

- **head**: a connection has ``head_timeout`` to send a complete request head, counted from when it
  opens or from the first byte of its next request; then it is closed (there is no request to answer);
- **body**: once the head is in, ``body_timeout`` to send the body; then 408 (unless an answer has
  begun) and close;
- **head size**: a head over ``MAX_HEAD_BYTES`` is answered 431 and closed (httptools has no bound);
- **cap**: at most ``max_connections`` open at once (below the file-descriptor limit, see
  ``default_max_connections``); a connection beyond it is answered 503 with ``Retry-After`` and
  closed at once, and ``RefusalLog`` logs a warning with the count at most once per
  ``REFUSAL_LOG_INTERVAL``.

A timer is armed only when a read leaves a head or a body incomplete (and at a connection's start),
so a request that arrives in one read, the common case, arms none.

uvicorn internals this relies on (the version is bounded in pyproject.toml, ``uvicorn[standard]>=0.50,<0.60``;
tests/ingest/test_http_limits.py covers each):

- ``uvicorn.protocols.http.httptools_impl.HttpToolsProtocol``: subclassed; its asyncio callbacks
  ``connection_made``, ``data_received``, ``connection_lost`` and its parser callbacks
  ``on_message_begin``, ``on_headers_complete``, ``on_message_complete`` are extended (each calls
  uvicorn's own first or after);
- its attributes ``transport``, ``loop``, ``connections`` (the server's set of open protocols: the
  count for the cap), ``server_state.default_headers`` (the Date header of every answer) and
  ``cycle.response_started`` (whether an answer has begun when the body timer fires);
- ``STATUS_LINE``: uvicorn's prebuilt status lines (``write_answer``, also the fast path's).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any, TypeVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from eventrelay.ingest.app import answer_headers, error_body
from eventrelay.ingest.cors import Headers

log = logging.getLogger("eventrelay.ingest")

FD_RESERVE = 256
"""File descriptors kept out of the connection cap for what else the process opens: the SQLite
files with their WAL and shared memory (queue, delivery log), log files, the listening socket, NATS
connections, the local AWS endpoint's runtime pipes, DNS and credential fetches. (The runtime also
keeps one per attempt a destination may have in flight.)"""
MIN_CONNECTIONS = 16
"""The cap is never below this, however low the file-descriptor limit (a server must take some)."""
UNLIMITED_FDS = 1 << 20
"""What an unlimited RLIMIT_NOFILE counts as (Linux's default ``fs.nr_open``)."""
REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between warnings about refused connections (each carries the count since the last one)."""
MAX_HEAD_BYTES = 64 * 1024
"""A request head (request line and headers) longer than this is answered 431 and closed: httptools
sets no bound, so a head trickled for ``head_timeout`` could make the server hold gigabytes. Far
over any client's (a Segment client's head is a few hundred bytes). Counted from the read after
the one the head began in, so a head may exceed it by up to one read (256 KB)."""
REFUSED_RETRY_AFTER = b"1"  # seconds a refused client waits: the cap frees as soon as connections close

_IDLE, _HEAD, _BODY = 0, 1, 2  # waiting between requests (or for our answer) / in a head / in a body


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits of one server (``ingest.head_timeout``, ``body_timeout``, ``max_connections``)."""

    head_timeout: float
    body_timeout: float
    max_connections: int


def default_max_connections(reserved: int = 0) -> int:
    """The cap when none is configured: this process's open-file limit less ``FD_RESERVE`` and
    ``reserved`` (the runtime's outgoing connections), so the cap is met before the fd limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = UNLIMITED_FDS if soft == resource.RLIM_INFINITY else soft
    return max(MIN_CONNECTIONS, limit - FD_RESERVE - reserved)


class RefusalLog:
    """Counts connections refused at the cap and logs a warning at most once per ``interval``:
    at the first refusal, then every interval while refusals go on, each with the count since the
    previous warning (so none goes unreported)."""

    def __init__(self, interval: float = REFUSAL_LOG_INTERVAL) -> None:
        self.interval = interval
        self.pending = 0
        self.total = 0
        self._open = 0
        self._limit = 0
        self._timer: asyncio.TimerHandle | None = None

    def refused(self, loop: asyncio.AbstractEventLoop, open_connections: int, limit: int) -> None:
        self.pending += 1
        self.total += 1
        self._open, self._limit = open_connections, limit
        if self._timer is None:
            self._report(loop)

    def _report(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if not self.pending:
            return
        log.warning(
            "refused %d new connection(s) with 503 since the last warning (%d in all): %d connections open, "
            "the limit is %d (ingest.max_connections, below the file-descriptor limit)",
            self.pending,
            self.total,
            self._open,
            self._limit,
        )
        self.pending = 0
        self._timer = loop.call_later(self.interval, self._report, loop)


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head/body time limits, the head size limit and the
    connection cap. Bind it to limits with ``bind_protocol(LimitedHttpProtocol, limits)``."""

    limits: ConnectionLimits
    refusals: RefusalLog
    _phase = _HEAD  # where the parser is: a new connection waits for a head
    _timed = _IDLE  # the phase the armed timer is for (_IDLE: none armed)
    _timer: asyncio.TimerHandle | None = None
    _head_bytes = 0  # bytes of the current head read after the read it began in (-1: it began in this one)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self.limits.max_connections
        if len(self.connections) > limit:
            self.refusals.refused(self.loop, len(self.connections) - 1, limit)
            message = "the server has as many connections open as it serves; retry shortly"
            self._close_with(503, error_body("too_many_connections", message), [(b"retry-after", REFUSED_RETRY_AFTER)])
            return
        self._arm(_HEAD)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        phase = self._phase
        if phase == _HEAD:  # still in a head after this read
            if self._head_bytes < 0:  # the head began in this read: count from the next
                self._head_bytes = 0
            else:
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._head_too_large()
                    return
        if phase != self._timed:
            self._arm(phase)

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(_IDLE)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._phase = _HEAD
        self._head_bytes = -1
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.head_received()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.body_received()
        super().on_message_complete()

    def head_received(self) -> None:
        """The request's head is complete: its body's time starts (subclasses that take a request
        themselves call this and ``body_received``)."""
        self._phase = _BODY

    def body_received(self) -> None:
        """The request's body is complete: the server's turn, no time limit on the client."""
        self._phase = _IDLE

    # -- timers ---------------------------------------------------------------------------------
    def _arm(self, phase: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timed = phase
        if phase == _HEAD:
            self._timer = self.loop.call_later(self.limits.head_timeout, self._head_late)
        elif phase == _BODY:
            self._timer = self.loop.call_later(self.limits.body_timeout, self._body_late)

    def _head_late(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _body_late(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is not None and cycle.response_started:
            self.transport.close()  # an answer is being written: nothing more can be said
            return
        timeout = self.limits.body_timeout
        message = f"the request body did not arrive within {timeout:g} s (ingest.body_timeout)"
        self._close_with(408, error_body("body_timeout", message, field="body"), [])

    def _head_too_large(self) -> None:
        message = f"the request head is over {MAX_HEAD_BYTES} bytes (request line and headers)"
        self._close_with(431, error_body("head_too_large", message, limit=f"{MAX_HEAD_BYTES // 1024} KB per head"), [])

    def _close_with(self, status: int, body: bytes, extra: Headers) -> None:
        """Answer ``status`` with ``body`` and close the connection."""
        if not self.transport.is_closing():
            self.write_answer(status, body, extra, close=True)

    def write_answer(self, status: int, body: bytes, headers: Headers, *, close: bool) -> None:
        """Write a whole answer as uvicorn's cycle would (its default headers, the JSON content
        headers, ``headers``), and close the connection after it when ``close``."""
        parts = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *answer_headers(status, body, headers)):
            parts += (name, b": ", value, b"\r\n")
        if close:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))
        if close:
            self.transport.close()


_Protocol = TypeVar("_Protocol", bound=LimitedHttpProtocol)


def bind_protocol(base: type[_Protocol], limits: ConnectionLimits, **attributes: Any) -> type[_Protocol]:
    """A subclass of ``base`` bound to ``limits``, a fresh ``RefusalLog`` and ``attributes``
    (uvicorn's ``http=`` setting takes a class, and builds one instance per connection)."""
    bound: dict[str, Any] = {"limits": limits, "refusals": RefusalLog(), **attributes}
    return type(f"Bound{base.__name__}", (base,), bound)
