"""The Tracking API as a raw ASGI app (no framework: this is the hot path).

``IngestApp(host)`` answers every ``/v1/...`` path: the event endpoints, the browser short
forms, the analytics.js settings endpoint, CORS preflights, and JSON 404/405 answers. An event
is answered 200 only once ``host.sink.submit`` has stored it, i.e. once it is durable. Bad
input is always a 4xx with a JSON error naming the field or the limit; a full store is a 429
(or 503 for a full disk) with ``Retry-After``; the server keeps serving after any of them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import orjson

from eventrelay.core import telemetry
from eventrelay.core.asgi import Receive, Scope, Send
from eventrelay.core.errors import DiskFull, IngestError, QueueFull, StorageError
from eventrelay.core.records import Accepted
from eventrelay.core.spec import CALL_TYPES, ordering_key
from eventrelay.ingest.auth import authenticate, basic_user, source_of
from eventrelay.ingest.batch import Rejection, prepare_batch
from eventrelay.ingest.body import decode, parse_object, read_body
from eventrelay.ingest.cors import Headers, cors_headers, preflight_headers
from eventrelay.ingest.encode import encode_event
from eventrelay.ingest.normalise import iso, normalise
from eventrelay.ingest.settings_endpoint import ApiOrigin, settings_document, settings_key
from eventrelay.ingest.sink import EventSink
from eventrelay.ingest.validate import validate

log = logging.getLogger("eventrelay.ingest")

_P = ParamSpec("_P")
_T = TypeVar("_T")

MAX_REMEMBERED_HEADERS = 1024  # decoded Authorization headers kept (bounded: a client may send any)
STORAGE_RETRY_AFTER = 5.0  # seconds a client waits after a storage error without its own hint

# path -> (call type or None for a batch, default channel)
ROUTES: dict[str, tuple[str | None, str]] = {
    **{f"/v1/{t}": (t, "server") for t in CALL_TYPES},
    **{f"/v1/{t[0]}": (t, "client") for t in CALL_TYPES},
    "/v1/batch": (None, "server"),
    "/v1/import": (None, "server"),
    "/v1/b": (None, "client"),
}

_SUCCESS = b'{"success":true}'
_JSON = (b"content-type", b"application/json")
_SUCCESS_HEADERS = [_JSON, (b"content-length", b"%d" % len(_SUCCESS)), *cors_headers(None)]
# Cacheable for a minute; the answer depends on Host (see settings_endpoint.ApiOrigin).
_SETTINGS_HEADERS = [(b"cache-control", b"max-age=60"), (b"vary", b"Host")]


class IngestHost(Protocol):
    """What the Tracking API needs from the runtime."""

    sink: EventSink

    def source_for_key(self, write_key: str) -> str | None:
        """The source name of a write key, or None."""
        ...

    def route(self, source: str, event: Mapping[str, Any]) -> tuple[str, ...]:
        """The destinations that get ``event`` (may be empty: it is stored anyway)."""
        ...


class IngestApp:
    """The ASGI app of the Tracking API. ``host`` is the ``Runtime`` (or a test double)."""

    def __init__(self, host: IngestHost, origin: ApiOrigin | None = None) -> None:
        self.host = host
        self.origin = origin or ApiOrigin()  # where the settings endpoint points analytics.js
        self._header_users: dict[bytes, str] = {}  # Authorization header -> its Basic user (write key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        origin: bytes | None = None
        try:
            request = _Request(scope)
            origin = request.origin
            status, body, extra = await self._dispatch(scope, request, receive)
        except Exception as exc:
            status, body, extra = self.error_answer(exc, scope.get("path", "?"))
        if body is _SUCCESS and origin is None:  # the hot path: headers built once, at import
            await send({"type": "http.response.start", "status": 200, "headers": list(_SUCCESS_HEADERS)})
            await send({"type": "http.response.body", "body": _SUCCESS})
            return
        await _respond(send, status, body, cors_headers(origin) + extra)

    def error_answer(self, exc: Exception, path: str) -> tuple[int, bytes, Headers]:
        """The answer to a request that raised ``exc``: 4xx for bad input, 429/503 with
        Retry-After for a full or failing store, 500 (logged) for a bug; the server keeps serving."""
        if isinstance(exc, IngestError):
            telemetry.rejected(exc.code)
            return exc.status, error_body(exc.code, exc.message, exc.field, exc.limit), []
        if isinstance(exc, QueueFull):
            return 429, error_body("queue_full", str(exc)), _retry_after(exc.retry_after)
        if isinstance(exc, DiskFull):
            return 503, error_body("disk_full", str(exc)), _retry_after(exc.retry_after)
        if isinstance(exc, StorageError):
            log.error("storage error while accepting events: %s", exc)
            return 503, error_body("storage_error", "the store failed; retry later"), _retry_after(STORAGE_RETRY_AFTER)
        log.error("unexpected error in the Tracking API on %s", path[:100], exc_info=exc)
        return 500, error_body("internal_error", "unexpected server error; retry later"), []

    async def _dispatch(self, scope: Scope, request: _Request, receive: Receive) -> tuple[int, bytes, Headers]:
        path: str = scope["path"]
        method: str = scope["method"]
        target = ROUTES.get(path) or ROUTES.get(path.rstrip("/"))
        if method == "OPTIONS":
            return (
                204,
                b"",
                preflight_headers(_header(scope, b"access-control-request-headers")),
            )
        if target is None:
            key = settings_key(path)
            if key is None:
                return 404, error_body("not_found", f"no endpoint {path[:100]}; see the Tracking API"), []
            if method != "GET":
                return _not_allowed(method, b"GET, OPTIONS")
            return self._settings(scope, key)
        if method != "POST":
            return _not_allowed(method, b"POST, OPTIONS")
        call_type, channel = target
        raw = await read_body(receive, request.content_length)
        prepared = self.prepare(
            call_type, channel, request.authorization, request.content_encoding, raw, _client_ip(scope)
        )
        if prepared.items:
            self.stored(prepared, await self.append(prepared))
        status, body = prepared.answer()
        return status, body, []

    def prepare(
        self,
        call_type: str | None,
        channel: str,
        authorization: bytes | None,
        content_encoding: bytes | None,
        raw: bytes,
        ip: str | None,
    ) -> Prepared:
        """Everything before storage, synchronously: authenticate, decode, parse, validate and
        normalise one event (``call_type``) or a batch (None). Raises ``IngestError``."""
        source = self._source_from_header(authorization)
        data = decode(raw, content_encoding)
        if call_type is not None:
            source, item = _without_gc(self._accept_single, data, source, call_type, channel, ip)
            return Prepared(source, [item], [])
        source, items, rejected = _without_gc(self._accept_batch, data, source, channel, ip)
        if rejected:
            telemetry.rejected("invalid_event", len(rejected))
        return Prepared(source, items, rejected)

    def append(self, prepared: Prepared) -> asyncio.Future[list[bool]]:
        """Store ``prepared.items`` through the host's sink: a future of their fresh flags
        (False: a duplicate), done once they are durable."""
        return self.host.sink.submit(prepared.items)

    def stored(self, prepared: Prepared, fresh: list[bool]) -> None:
        """After ``append(prepared)`` returned ``fresh``: count. Duplicates are counted, not refused."""
        new = sum(fresh)
        if new:
            telemetry.ingested(prepared.source, new)
        if new != len(prepared.items):
            telemetry.duplicate(prepared.source, len(prepared.items) - new)

    def _accept_single(
        self, data: bytes, source: str | None, call_type: str, channel: str, ip: str | None
    ) -> tuple[str, Accepted]:
        """Parse, authenticate (body key), validate and normalise one event: its source and queue item."""
        event = parse_object(data)
        if source is None:
            source = authenticate(None, event, self.host.source_for_key)
        validate(event, call_type)
        received_at = time.time()
        normalise(
            event,
            call_type,
            received_at=received_at,
            received_iso=iso(received_at),
            ip=ip,
            channel=channel,
        )
        stored = encode_event(event)
        destinations = self.host.route(source, event)
        return source, Accepted(
            event["messageId"], source, call_type, received_at, stored, destinations, ordering_key(event)
        )

    def _accept_batch(
        self, data: bytes, source: str | None, channel: str, ip: str | None
    ) -> tuple[str, list[Accepted], list[Rejection]]:
        """Parse, authenticate (body key), validate and normalise a batch: its source, queue items, rejections."""
        body = parse_object(data)
        if source is None:
            source = authenticate(None, body, self.host.source_for_key)
        received_at = time.time()
        events, rejected = prepare_batch(
            body,
            received_at=received_at,
            received_iso=iso(received_at),
            ip=ip,
            channel=channel,
        )
        route = self.host.route
        items = [
            Accepted(
                event["messageId"],
                source,
                event["type"],
                received_at,
                stored,
                route(source, event),
                ordering_key(event),
            )
            for event, stored in events
        ]
        return source, items, rejected

    def _source_from_header(self, header: bytes | None) -> str | None:
        """The source of a Basic ``Authorization`` header; None when there is none (body key then)."""
        if not header:
            return None
        key = self._header_users.get(header)  # clients send the same header again and again
        if key is None:
            key = basic_user(header)
            if key is None:
                return None
            if len(self._header_users) >= MAX_REMEMBERED_HEADERS:
                self._header_users.clear()
            self._header_users[header] = key
        return source_of(key, self.host.source_for_key)  # looked up every time: keys can be reconfigured

    def _settings(self, scope: Scope, key: str) -> tuple[int, bytes, Headers]:
        if self.host.source_for_key(key) is None:
            return 404, error_body("unknown_write_key", "no source has this write key"), []
        host, scheme = self.origin.resolve(_header(scope, b"host"), scope.get("scheme", "http"), scope.get("server"))
        return 200, orjson.dumps(settings_document(key, host, scheme)), _SETTINGS_HEADERS


@dataclass(slots=True)
class Prepared:
    """A request's events, ready to store: its source, the queue items, the batch items refused."""

    source: str
    items: list[Accepted]
    rejected: list[Rejection]

    def answer(self) -> tuple[int, bytes]:
        """Status and body once ``items`` are stored (400 when a batch had none to store)."""
        if not self.items:
            return 400, _batch_refused(self.rejected)
        if not self.rejected:
            return 200, _SUCCESS
        body = {"success": True, "accepted": len(self.items), "rejected": [r.as_json() for r in self.rejected]}
        return 200, orjson.dumps(body)


class _Request:
    """The few request headers ingest reads (one C-level dict build; a repeated header: the last wins)."""

    __slots__ = ("authorization", "content_encoding", "content_length", "origin")

    def __init__(self, scope: Scope) -> None:
        headers: dict[bytes, bytes] = dict(scope["headers"])
        self.authorization = headers.get(b"authorization")
        self.content_encoding = headers.get(b"content-encoding")
        self.origin = headers.get(b"origin")
        self.content_length = _int(headers.get(b"content-length"))


def _without_gc(work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``work(*args)`` with the cyclic garbage collector paused (a synchronous section: no await).

    Parsing a request allocates thousands of containers (~30 per event) that are all alive
    while it runs, so the collector's young-generation passes walk them again and again and
    promote them to older generations (measured: ~20% of a 100-event batch's CPU). Parsed JSON
    has no reference cycles, and ``work`` returns only strings, bytes and small records: the
    event dicts are freed by reference counting when it returns, which also takes them back
    off the collector's allocation count, so no collection is owed for them afterwards."""
    if not gc.isenabled():  # someone paused it already: leave it as it is
        return work(*args, **kwargs)
    gc.disable()
    try:
        return work(*args, **kwargs)
    finally:
        gc.enable()


def _int(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def error_body(code: str, message: str, field: str | None = None, limit: str | None = None) -> bytes:
    """The JSON body of an error answer: ``{"success": false, "error": {code, message, field?, limit?}}``."""
    error: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    if limit is not None:
        error["limit"] = limit
    return orjson.dumps({"success": False, "error": error})


def _batch_refused(rejected: list[Rejection]) -> bytes:
    return orjson.dumps(
        {
            "success": False,
            "error": {
                "code": "invalid_payload",
                "message": "every event in the batch was rejected",
                "field": "batch",
            },
            "accepted": 0,
            "rejected": [r.as_json() for r in rejected],
        }
    )


def _not_allowed(method: str, allow: bytes) -> tuple[int, bytes, Headers]:
    message = f"method {method[:16]} is not allowed here; use {allow.decode()}"
    return 405, error_body("method_not_allowed", message), [(b"allow", allow)]


def _retry_after(seconds: float) -> Headers:
    return [(b"retry-after", str(max(1, math.ceil(seconds))).encode())]


def answer_headers(status: int, body: bytes, headers: Headers) -> Headers:
    """Every header of an answer: the JSON content headers (none for a 204), then ``headers``."""
    if status == 204:
        return headers
    return [_JSON, (b"content-length", str(len(body)).encode()), *headers]


async def _respond(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": answer_headers(status, body, headers)})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol when run on its own (the runtime starts the host)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
