"""The Tracking API's hot path inside uvicorn: plain event POSTs answered without ASGI.

uvicorn serves everything on the one port. For each request its HTTP protocol builds an ASGI
scope, a request/response cycle with an ``asyncio.Event``, and a task that runs the app through
its middleware, ``receive`` and two ``send`` calls with header checks: per request, more CPU than
parsing and validating a ~1 KB event. ``FastIngestProtocol`` (uvicorn's own httptools protocol,
subclassed through ``LimitedHttpProtocol``) takes the common case off that path: when a request's
head shows

    POST <an event or batch path of the Tracking API> HTTP/1.1, with Content-Length within
    MAX_BODY_BYTES, and none of Origin, Expect, Transfer-Encoding, Upgrade, X-Forwarded-For,
    Forwarded, nor a pipelined request still being answered on the connection,

the body is collected by the protocol itself, ``IngestApp.prepare`` runs as soon as it is
complete, the items go to the queue, and the answer is written from the queue's completion
callback: no task, no ASGI messages. The answer is the same as the ASGI path's (status, body,
headers), as are the errors; everything else (browsers' CORS requests, gzip-less chunked
uploads, proxies' forwarded headers, the admin API and page) takes uvicorn's ordinary path to
the one-port ASGI app. Connection handling stays uvicorn's (keep-alive, pipelining, flow control,
graceful shutdown, malformed requests) plus the time limits and the cap of ``http_limits.py``.

``ingest.fast_path: false`` turns it off (``http_protocol``): every request then takes the ASGI
app, with the same answers and the same connection limits.

uvicorn internals this relies on (the version is bounded in pyproject.toml,
``uvicorn[standard]>=0.50,<0.60``; the Tracking API tests run with the fast path on and off:
tests/ingest/test_http.py, tests/ingest/test_fast_http.py, tests/e2e/test_segment_clients.py):

- ``HttpToolsProtocol`` (through ``LimitedHttpProtocol``, whose own list is in http_limits.py): its
  parser callbacks ``on_headers_complete``, ``on_body``, ``on_message_complete`` are overridden and
  call uvicorn's for every request not taken here;
- request state it reads: ``url`` (the request target, from ``on_url``), ``headers`` (lower-cased
  name/value pairs, from ``on_header``), ``parser`` (``get_method``, ``get_http_version``,
  ``should_keep_alive``), ``client`` (the peer address);
- ``cycle``: set to a ``_FastCycle`` that has the four attributes uvicorn's protocol reads of a
  cycle (``response_complete``, ``keep_alive``, ``disconnected``, ``message_event``) plus
  ``response_started`` (read by ``LimitedHttpProtocol``);
- ``transport`` and ``on_response_complete()`` (hands the connection back: the keep-alive timer,
  the next pipelined request); answers are written by ``LimitedHttpProtocol.write_answer``.
"""

from __future__ import annotations

import asyncio
import logging

from eventrelay.core.errors import StorageError
from eventrelay.ingest.app import ROUTES, IngestApp, Prepared
from eventrelay.ingest.body import MAX_BODY_BYTES
from eventrelay.ingest.cors import Headers, cors_headers
from eventrelay.ingest.http_limits import ConnectionLimits, LimitedHttpProtocol, bind_protocol

log = logging.getLogger("eventrelay.ingest")

# The paths served here, as they appear on the request line (no query string, no trailing slash).
FAST_ROUTES: dict[bytes, tuple[str | None, str]] = {path.encode(): target for path, target in ROUTES.items()}
# Any of these sends the request the ordinary way: CORS answers depend on Origin, Expect needs a
# 100 Continue, chunked bodies have no length to check first, and a forwarded client address is
# for uvicorn's proxy-headers handling to judge.
_ORDINARY_HEADERS = frozenset(
    {b"origin", b"expect", b"transfer-encoding", b"upgrade", b"x-forwarded-for", b"forwarded"}
)
_NO_ORIGIN = cors_headers(None)


class _Pending:
    """A no-op ``set()``: uvicorn's ``connection_lost`` wakes a cycle's reader this way."""

    def set(self) -> None:
        return None


class _FastCycle:
    """What uvicorn's protocol reads of a cycle (``response_complete``, ``keep_alive``,
    ``disconnected``, ``message_event``) and ``LimitedHttpProtocol`` (``response_started``), plus
    this request's own state. The answer is written at once, so it starts and completes together."""

    __slots__ = (
        "authorization",
        "body",
        "call_type",
        "channel",
        "content_encoding",
        "disconnected",
        "keep_alive",
        "message_event",
        "response_complete",
    )

    def __init__(
        self,
        target: tuple[str | None, str],
        authorization: bytes | None,
        content_encoding: bytes | None,
        keep_alive: bool,
    ) -> None:
        self.call_type, self.channel = target
        self.authorization = authorization
        self.content_encoding = content_encoding
        self.keep_alive = keep_alive
        self.body = bytearray()
        self.response_complete = False
        self.disconnected = False
        self.message_event = _Pending()

    @property
    def response_started(self) -> bool:
        return self.response_complete


class FastIngestProtocol(LimitedHttpProtocol):
    """uvicorn's httptools protocol (with the connection limits) and the Tracking API's event POSTs
    answered directly. Bind it to an app with ``http_protocol(ingest, limits, fast_path=True)``."""

    ingest: IngestApp

    def on_headers_complete(self) -> None:
        cycle = self._fast_cycle()
        if cycle is None:
            super().on_headers_complete()
        else:
            self.head_received()
            self.cycle = cycle  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if isinstance(cycle, _FastCycle):
            cycle.body += body  # at most MAX_BODY_BYTES: the length was checked first
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if isinstance(cycle, _FastCycle):
            self.body_received()
            self._accept(cycle)
        else:
            super().on_message_complete()

    # -- the fast path ------------------------------------------------------------------------
    def _fast_cycle(self) -> _FastCycle | None:
        """A cycle for this request when it is a plain event POST (see the module docstring)."""
        previous = self.cycle
        if previous is not None and not previous.response_complete:
            return None  # pipelined behind an unanswered request: uvicorn keeps the order
        target = FAST_ROUTES.get(self.url)
        parser = self.parser
        if target is None or parser.get_method() != b"POST" or parser.get_http_version() != "1.1":
            return None
        length = authorization = content_encoding = None
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value
            elif name == b"content-encoding":
                content_encoding = value
            elif name in _ORDINARY_HEADERS:
                return None
        if length is None or not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return None  # the ordinary path answers (or refuses) it
        return _FastCycle(target, authorization, content_encoding, parser.should_keep_alive())

    def _accept(self, cycle: _FastCycle) -> None:
        ingest = self.ingest
        try:
            prepared = ingest.prepare(
                cycle.call_type,
                cycle.channel,
                cycle.authorization,
                cycle.content_encoding,
                bytes(cycle.body),
                self.client[0] if self.client else None,
            )
            if not prepared.items:
                self._answer(cycle, *prepared.answer(), [])
                return
            stored = ingest.append(prepared)
        except Exception as exc:
            self._answer(cycle, *ingest.error_answer(exc, self.url.decode("latin-1")))
            return
        stored.add_done_callback(lambda done: self._stored(cycle, prepared, done))

    def _stored(self, cycle: _FastCycle, prepared: Prepared, done: asyncio.Future[list[bool]]) -> None:
        exc: Exception
        if done.cancelled():  # the queue closed under it: not stored, the client retries
            exc = StorageError("the queue closed before the events were stored")
        elif (error := done.exception()) is not None:
            exc = error if isinstance(error, Exception) else RuntimeError(repr(error))
        else:
            try:
                self.ingest.stored(prepared, done.result())
            except Exception:  # counting and waking delivery must not lose the answer
                log.exception("after storing events")
            self._answer(cycle, *prepared.answer(), [])
            return
        self._answer(cycle, *self.ingest.error_answer(exc, self.url.decode("latin-1")))

    def _answer(self, cycle: _FastCycle, status: int, body: bytes, extra: Headers) -> None:
        """Write the answer as uvicorn's cycle would, then hand the connection back to uvicorn."""
        cycle.response_complete = True
        if cycle.disconnected or self.transport.is_closing():
            return
        self.write_answer(status, body, [*_NO_ORIGIN, *extra], close=not cycle.keep_alive)
        self.on_response_complete()


def http_protocol(ingest: IngestApp, limits: ConnectionLimits, *, fast_path: bool) -> type[LimitedHttpProtocol]:
    """The protocol class for uvicorn's ``http=`` setting (``Runtime.server_config``): the connection
    limits always, and the fast path for ``ingest``'s event POSTs when ``fast_path`` (``ingest.fast_path``)."""
    if fast_path:
        return bind_protocol(FastIngestProtocol, limits, ingest=ingest)
    return bind_protocol(LimitedHttpProtocol, limits)
