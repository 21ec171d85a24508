"""Reading and decoding a Tracking API request body, within named limits.

A body is read from ASGI ``http.request`` messages up to ``MAX_BODY_BYTES``, gunzipped when
``Content-Encoding: gzip`` (never past ``MAX_DECOMPRESSED_BYTES``: a gzip bomb stops there), and
parsed as a JSON object. ``text/plain`` (what analytics.js sends to avoid a CORS preflight) is
JSON too: the content type is not consulted.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from eventrelay.core.asgi import Message, Receive
from eventrelay.core.errors import PayloadError
from eventrelay.core.spec import BATCH_LIMIT, EVENT_DEPTH_LIMIT, MAX_BATCH_BYTES

MAX_BODY_BYTES = MAX_BATCH_BYTES
"""Bytes read off the wire: a gzip body is smaller than its JSON, and no valid request's JSON
is over the batch limit, so nothing valid is ever longer."""
MAX_DECOMPRESSED_BYTES = MAX_BATCH_BYTES
"""Bytes a gzip body may inflate to (gzip bomb guard): the largest valid JSON is one full batch."""
_PARSER_DEPTH_ERROR = "depth limit exceeded"  # how orjson says a body nests past its 1,024 levels


async def read_body(receive: Receive, content_length: int | None) -> bytes:
    """The raw body, refusing one longer than ``MAX_BODY_BYTES`` without reading all of it."""
    if content_length is not None and content_length > MAX_BODY_BYTES:
        raise _too_large(f"request body is {content_length} bytes")
    message = await receive()
    body: bytes = _request_body(message)
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk: bytes = _request_body(message)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(f"request body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _request_body(message: Message) -> bytes:
    """The body bytes of an ``http.request`` message. A disconnect (the client went, or the server
    closed the connection at the body time limit) ends the request: a part of a body is never taken
    for the whole, even when it happens to be valid JSON."""
    if message["type"] == "http.disconnect":
        raise PayloadError("the connection closed before the request body was complete", field="body")
    body: bytes = message.get("body", b"")
    return body


def gunzip(data: bytes) -> bytes:
    """Inflate a gzip body, stopping at ``MAX_DECOMPRESSED_BYTES``. Bad gzip is a 400 naming the problem."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error as exc:
        raise PayloadError(f"body is not valid gzip (Content-Encoding: gzip): {exc}", field="body") from exc
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise PayloadError(
            f"gzip body inflates to more than {MAX_DECOMPRESSED_BYTES} bytes; "
            f"the limit is {MAX_DECOMPRESSED_BYTES} bytes decompressed ({BATCH_LIMIT})",
            field="body",
            limit=BATCH_LIMIT,
        )
    if not inflater.eof:
        raise PayloadError("body is not valid gzip (Content-Encoding: gzip): truncated stream", field="body")
    return out


def parse_object(data: bytes) -> dict[str, Any]:
    """The body as a JSON object; empty, malformed and non-object bodies are 400s."""
    if not data:
        raise PayloadError("request body is empty; send a JSON object", field="body")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith(_PARSER_DEPTH_ERROR):
            raise PayloadError(
                f"body is nested deeper than the JSON parser reads ({exc}); the limit is {EVENT_DEPTH_LIMIT}",
                field="body",
                limit=EVENT_DEPTH_LIMIT,
            ) from exc
        raise PayloadError(f"body is not valid JSON: {exc}", field="body") from exc
    if not isinstance(value, dict):
        raise PayloadError(f"body must be a JSON object, not {json_type(value)}", field="body")
    return value


def decode(raw: bytes, content_encoding: bytes | None) -> bytes:
    """Undo ``Content-Encoding`` (gzip, or identity)."""
    if not content_encoding or content_encoding == b"identity":
        return raw
    if content_encoding.strip().lower() in (b"gzip", b"x-gzip"):
        if not raw:
            raise PayloadError("request body is empty; send a JSON object", field="body")
        return gunzip(raw)
    raise PayloadError(
        f"Content-Encoding {content_encoding.decode('latin-1')!r} is not supported; use gzip or none",
        field="Content-Encoding",
    )


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _too_large(what: str) -> PayloadError:
    return PayloadError(
        f"{what}; the limit is {MAX_BATCH_BYTES} bytes ({BATCH_LIMIT})", field="body", limit=BATCH_LIMIT
    )
