"""body.py: reading within the limit, gzip (bounded), JSON objects only."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from eventrelay.core.errors import PayloadError
from eventrelay.core.spec import MAX_BATCH_BYTES
from eventrelay.ingest.body import MAX_BODY_BYTES, MAX_DECOMPRESSED_BYTES, decode, gunzip, parse_object, read_body


def receiver(parts: list[bytes]) -> Any:
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


def test_limits_are_segments() -> None:
    assert MAX_BATCH_BYTES == 500 * 1024
    assert MAX_DECOMPRESSED_BYTES == MAX_BATCH_BYTES


async def test_read_body_joins_chunks() -> None:
    assert await read_body(receiver([b'{"a"', b":1", b"}"]), None) == b'{"a":1}'


async def test_a_disconnect_before_the_body_is_complete_is_refused_not_taken_as_the_body() -> None:
    messages = [{"type": "http.request", "body": b'{"userId":"u","event":"e"}', "more_body": True}]
    messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    with pytest.raises(PayloadError) as err:
        await read_body(receive, 100)
    assert err.value.field == "body" and "closed before the request body was complete" in err.value.message


async def test_read_body_refuses_declared_oversize_without_reading() -> None:
    async def never() -> dict[str, Any]:
        raise AssertionError("the body must not be read")

    with pytest.raises(PayloadError) as err:
        await read_body(never, MAX_BODY_BYTES + 1)
    assert err.value.limit == "500 KB per batch request"
    assert f"request body is {MAX_BODY_BYTES + 1} bytes" in err.value.message


async def test_read_body_refuses_streamed_oversize() -> None:
    parts = [b"x" * 100_000] * 6
    with pytest.raises(PayloadError) as err:
        await read_body(receiver(parts), None)
    assert "512000 bytes" in err.value.message


def test_gunzip_round_trip() -> None:
    assert gunzip(gzip.compress(b'{"x":1}')) == b'{"x":1}'


def test_bad_gzip_names_the_problem() -> None:
    with pytest.raises(PayloadError) as err:
        gunzip(b"not gzip at all")
    assert "not valid gzip" in err.value.message


def test_truncated_gzip_is_refused() -> None:
    with pytest.raises(PayloadError) as err:
        gunzip(gzip.compress(b'{"x":1}' * 100)[:-10])
    assert "truncated" in err.value.message or "not valid gzip" in err.value.message


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(PayloadError) as err:
        gunzip(bomb)
    assert f"the limit is {MAX_DECOMPRESSED_BYTES} bytes decompressed" in err.value.message


def test_decode_identity_and_unknown_encoding() -> None:
    assert decode(b"abc", None) == b"abc"
    assert decode(b"abc", b"identity") == b"abc"
    with pytest.raises(PayloadError) as err:
        decode(b"abc", b"br")
    assert err.value.field == "Content-Encoding"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b"[1,2]", "not an array"),
        (b'"s"', "not a string"),
        (b"null", "not null"),
    ],
)
def test_parse_object_refuses(data: bytes, expected: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_object(data)
    assert expected in err.value.message
    assert err.value.field == "body"
