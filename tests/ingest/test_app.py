"""The Tracking API over ASGI: every endpoint, both auth styles, and every bad-input case of
issue 2 answered with a precise 4xx naming the field or limit, the next good request still served."""

from __future__ import annotations

import gc
import gzip
from typing import Any

import orjson
import pytest

from eventrelay.core.errors import DiskFull, QueueFull, StorageError
from eventrelay.ingest.app import IngestApp
from eventrelay.ingest.settings_endpoint import ApiOrigin
from eventrelay.queue.memory import MemoryQueue
from tests.ingest.conftest import WRITE_KEY, Answer, FakeHost, basic, call

TRACK = {"userId": "u1", "event": "Order Completed", "properties": {"total": 12.5}}
ONE_OF_EACH: dict[str, dict[str, Any]] = {
    "track": TRACK,
    "identify": {"userId": "u1", "traits": {"plan": "pro"}},
    "page": {"anonymousId": "a1", "name": "Home"},
    "screen": {"userId": "u1", "name": "Cart"},
    "group": {"userId": "u1", "groupId": "g1"},
    "alias": {"userId": "u1", "previousId": "a1"},
}


async def good_request_still_works(app: IngestApp, host: FakeHost) -> None:
    answer = await call(app, "/v1/track", {**TRACK, "messageId": "after-error"}, auth=basic())
    assert (answer.status, answer.json()) == (200, {"success": True})
    assert any(e["messageId"] == "after-error" for e in await host.stored())


def assert_error(answer: Answer, status: int, *, field: str | None = None, text: str = "") -> dict[str, Any]:
    assert answer.status == status, answer.body
    doc = answer.json()
    assert doc["success"] is False
    error: dict[str, Any] = doc["error"]
    assert error["code"] and error["message"]
    if field is not None:
        assert error.get("field") == field, error
    assert text in error["message"], error
    assert WRITE_KEY not in answer.body.decode()
    return error


@pytest.mark.parametrize("call_type", sorted(ONE_OF_EACH))
async def test_every_call_type_is_stored(app: IngestApp, host: FakeHost, call_type: str) -> None:
    answer = await call(app, f"/v1/{call_type}", {**ONE_OF_EACH[call_type], "type": "ignored"}, auth=basic())
    assert (answer.status, answer.json()) == (200, {"success": True})
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["content-length"] == str(len(answer.body))
    (event,) = await host.stored()
    assert event["type"] == call_type
    assert event["context"]["ip"] == "203.0.113.7"
    assert event["channel"] == "server"


@pytest.mark.parametrize("short", ["t", "i", "p", "s", "g", "a"])
async def test_browser_short_paths_with_text_plain_and_body_key(app: IngestApp, host: FakeHost, short: str) -> None:
    call_type = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias"}[short]
    body = {**ONE_OF_EACH[call_type], "writeKey": WRITE_KEY, "integrations": {"Segment.io": True}}
    answer = await call(app, f"/v1/{short}", body, headers={"content-type": "text/plain", "origin": "https://a.test"})
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "https://a.test"
    (event,) = await host.stored()
    assert event["type"] == call_type
    assert event["channel"] == "client"
    assert "writeKey" not in event


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import", "/v1/b"])
async def test_batch_endpoints(app: IngestApp, host: FakeHost, path: str) -> None:
    batch = [{**body, "type": t} for t, body in ONE_OF_EACH.items()]
    answer = await call(app, path, {"batch": batch, "writeKey": WRITE_KEY})
    assert (answer.status, answer.json()) == (200, {"success": True})
    assert sorted(e["type"] for e in await host.stored()) == sorted(ONE_OF_EACH)


async def test_basic_auth_with_any_password(app: IngestApp) -> None:
    assert (await call(app, "/v1/track", TRACK, auth=basic(password="whatever"))).status == 200


async def test_gzip_body(app: IngestApp, host: FakeHost) -> None:
    answer = await call(
        app,
        "/v1/batch",
        gzip.compress(orjson.dumps({"batch": [{**TRACK, "type": "track"}]})),
        auth=basic(),
        headers={"content-encoding": "gzip"},
        chunks=3,
    )
    assert answer.status == 200
    assert (await host.stored())[0]["event"] == "Order Completed"


async def test_duplicate_message_id_is_200_and_stored_once(app: IngestApp, host: FakeHost) -> None:
    for _ in range(2):
        answer = await call(
            app, "/v1/track", {**TRACK, "messageId": "dup-1"}, auth=basic(), headers={"x-retry-count": "1"}
        )
        assert answer.status == 200
    assert len(await host.stored()) == 1


async def test_events_with_no_destination_are_stored(host: FakeHost) -> None:
    class NoRoutes(FakeHost):
        def route(self, source: str, event: Any) -> tuple[str, ...]:
            return ()

    quiet = NoRoutes(host.queue)
    app = IngestApp(quiet)
    assert (await call(app, "/v1/track", {**TRACK, "messageId": "m-none"}, auth=basic())).status == 200
    again = await call(app, "/v1/track", {**TRACK, "messageId": "m-none"}, auth=basic())
    assert again.status == 200
    assert await host.queue.depth() == 0


# -- bad input: one test per case of issue 2 -----------------------------------------------------


async def test_malformed_json(app: IngestApp, host: FakeHost) -> None:
    assert_error(
        await call(app, "/v1/track", b'{"userId": "u1",', auth=basic()),
        400,
        field="body",
        text="not valid JSON",
    )
    await good_request_still_works(app, host)


async def test_non_object_json(app: IngestApp, host: FakeHost) -> None:
    assert_error(await call(app, "/v1/track", b"[1, 2]", auth=basic()), 400, field="body", text="not an array")
    await good_request_still_works(app, host)


@pytest.mark.parametrize("key", ["properties", "traits", "context", "integrations"])
async def test_wrong_types_name_the_field(app: IngestApp, host: FakeHost, key: str) -> None:
    answer = await call(app, "/v1/track", {**TRACK, key: ["not", "an", "object"]}, auth=basic())
    assert_error(answer, 400, field=key, text=f"{key} must be an object, not an array")
    await good_request_still_works(app, host)


async def test_oversize_event(app: IngestApp, host: FakeHost) -> None:
    body = orjson.dumps({**TRACK, "properties": {"blob": "x" * 40_000}})
    error = assert_error(
        await call(app, "/v1/track", body, auth=basic()),
        400,
        text="bytes as stored; the limit is 32768 bytes (32 KB per event) plus 512 bytes for the fields",
    )
    assert error["limit"] == "32 KB per event"
    await good_request_still_works(app, host)


async def test_oversize_gzip_event_counts_decompressed_bytes(app: IngestApp, host: FakeHost) -> None:
    body = orjson.dumps({**TRACK, "properties": {"blob": "x" * 40_000}})
    answer = await call(app, "/v1/track", gzip.compress(body), auth=basic(), headers={"content-encoding": "gzip"})
    assert_error(answer, 400, text="32 KB per event")
    await good_request_still_works(app, host)


async def test_oversize_batch(app: IngestApp, host: FakeHost) -> None:
    batch = [{**TRACK, "type": "track", "properties": {"blob": "x" * 20_000}} for _ in range(30)]
    body = orjson.dumps({"batch": batch})
    error = assert_error(
        await call(app, "/v1/batch", body, auth=basic(), chunks=8),
        400,
        field="body",
        text="the limit is 512000 bytes (500 KB per batch request)",
    )
    assert error["limit"] == "500 KB per batch request"
    assert await host.stored() == []
    await good_request_still_works(app, host)


async def test_gzip_bomb(app: IngestApp, host: FakeHost) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * 20_000_000 + b"]}")
    answer = await call(app, "/v1/batch", bomb, auth=basic(), headers={"content-encoding": "gzip"})
    assert_error(answer, 400, text="the limit is 512000 bytes decompressed")
    await good_request_still_works(app, host)


async def test_too_many_batch_items(app: IngestApp, host: FakeHost) -> None:
    batch = [{"type": "identify", "userId": "u"}] * 2501
    answer = await call(app, "/v1/batch", {"batch": batch}, auth=basic())
    error = assert_error(answer, 400, field="batch", text="batch holds 2501 events; the limit is 2500 events")
    assert error["limit"] == "2,500 events per batch"
    await good_request_still_works(app, host)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/track", {"event": "E"}, "userId"),
        ("/v1/identify", {"userId": None, "anonymousId": ""}, "userId"),
        ("/v1/track", {"userId": "u"}, "event"),
        ("/v1/group", {"userId": "u"}, "groupId"),
        ("/v1/alias", {"userId": "u"}, "previousId"),
        ("/v1/alias", {"previousId": "p"}, "userId"),
        ("/v1/identify", {"userId": "u", "messageId": "m" * 101}, "messageId"),
    ],
)
async def test_missing_ids(app: IngestApp, host: FakeHost, path: str, body: dict[str, Any], field: str) -> None:
    assert_error(await call(app, path, body, auth=basic()), 400, field=field)
    await good_request_still_works(app, host)


@pytest.mark.parametrize("body", [b"\x1f\x8b\x08\x00garbage", b"plain text, not gzip"])
async def test_bad_gzip(app: IngestApp, host: FakeHost, body: bytes) -> None:
    answer = await call(app, "/v1/track", body, auth=basic(), headers={"content-encoding": "gzip"})
    assert_error(answer, 400, text="not valid gzip")
    await good_request_still_works(app, host)


@pytest.mark.parametrize(
    ("auth", "body"),
    [
        (basic("wk_unknown_key_000000"), TRACK),
        (None, {**TRACK, "writeKey": "wk_unknown_key_000000"}),
        (None, TRACK),
        (b"Basic !!!", TRACK),
    ],
)
async def test_unknown_or_missing_write_key(
    app: IngestApp, host: FakeHost, auth: bytes | None, body: dict[str, Any]
) -> None:
    answer = await call(app, "/v1/track", body, auth=auth)
    error = assert_error(answer, 401)
    assert error["code"] == "unauthorized"
    assert "wk_unknown_key_000000" not in answer.body.decode()
    assert await host.stored() == []
    await good_request_still_works(app, host)


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
async def test_empty_body(app: IngestApp, host: FakeHost, path: str) -> None:
    assert_error(await call(app, path, b"", auth=basic()), 400, field="body", text="empty")
    await good_request_still_works(app, host)


# -- batches: partial acceptance ------------------------------------------------------------------


async def test_batch_with_some_invalid_items_is_200_listing_them(app: IngestApp, host: FakeHost) -> None:
    batch = [
        {**TRACK, "type": "track", "messageId": "ok-1"},
        {"type": "track", "userId": "u1", "messageId": "no-event"},
        {"type": "identify", "messageId": "no-id"},
        {**TRACK, "messageId": "no-type"},
        {**TRACK, "type": "track", "messageId": "ok-2"},
    ]
    answer = await call(app, "/v1/batch", {"batch": batch}, auth=basic())
    assert answer.status == 200
    doc = answer.json()
    assert doc["success"] is True
    assert doc["accepted"] == 2
    assert [(r["index"], r["messageId"], r["field"]) for r in doc["rejected"]] == [
        (1, "no-event", "event"),
        (2, "no-id", "userId"),
        (3, "no-type", "type"),
    ]
    assert sorted(e["messageId"] for e in await host.stored()) == ["ok-1", "ok-2"]


async def test_batch_with_all_items_invalid_is_400(app: IngestApp, host: FakeHost) -> None:
    answer = await call(app, "/v1/batch", {"batch": [{"type": "track", "userId": "u"}]}, auth=basic())
    assert_error(answer, 400, field="batch")
    assert answer.json()["rejected"][0]["field"] == "event"
    await good_request_still_works(app, host)


# -- storage pressure -------------------------------------------------------------------------------


class FailingQueue(MemoryQueue):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    async def append(self, items: Any) -> list[bool]:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "status", "retry_after"),
    [
        (QueueFull("full", retry_after=7.2), 429, "8"),
        (DiskFull("disk"), 503, "10"),
        (StorageError("boom"), 503, "5"),
    ],
)
async def test_store_pressure(exc: Exception, status: int, retry_after: str) -> None:
    app = IngestApp(FakeHost(FailingQueue(exc)))
    answer = await call(app, "/v1/track", TRACK, auth=basic())
    assert answer.status == status
    assert answer.headers["retry-after"] == retry_after
    assert answer.json()["success"] is False


# -- routing, methods, CORS, settings --------------------------------------------------------------


async def test_unknown_path_is_404_json(app: IngestApp) -> None:
    assert_error(await call(app, "/v1/nope", TRACK, auth=basic()), 404)


async def test_get_on_post_endpoint_is_405(app: IngestApp) -> None:
    answer = await call(app, "/v1/track", method="GET")
    assert_error(answer, 405)
    assert "POST" in answer.headers["allow"]


async def test_preflight(app: IngestApp) -> None:
    answer = await call(
        app,
        "/v1/t",
        method="OPTIONS",
        headers={"origin": "https://shop.example", "access-control-request-method": "POST"},
    )
    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == "https://shop.example"
    assert "Content-Encoding" in answer.headers["access-control-allow-headers"]
    origins = [v for k, v in answer.raw_headers if k.lower() == b"access-control-allow-origin"]
    assert origins == [b"https://shop.example"]  # twice, and browsers refuse the preflight


async def test_errors_carry_cors_headers(app: IngestApp) -> None:
    answer = await call(app, "/v1/track", b"{", auth=basic(), headers={"origin": "https://shop.example"})
    assert answer.headers["access-control-allow-origin"] == "https://shop.example"


async def test_settings_endpoint(host: FakeHost) -> None:
    app = IngestApp(host, ApiOrigin(allowed_hosts=("ingest.test",)))
    answer = await call(
        app, f"/v1/projects/{WRITE_KEY}/settings", method="GET", headers={"origin": "https://shop.example"}
    )
    assert answer.status == 200
    segment = answer.json()["integrations"]["Segment.io"]
    assert segment["apiHost"] == "ingest.test:8088/v1"
    assert segment["protocol"] == "http"
    assert answer.headers["access-control-allow-origin"] == "https://shop.example"


async def test_settings_for_unknown_key_is_404(app: IngestApp) -> None:
    answer = await call(app, "/v1/projects/wk_unknown_key_000000/settings", method="GET")
    assert_error(answer, 404)
    assert "wk_unknown_key_000000" not in answer.body.decode()


async def test_an_unexpected_bug_is_a_json_500_and_the_app_keeps_serving(host: FakeHost) -> None:
    class Broken(FakeHost):
        calls = 0

        def route(self, source: str, event: Any) -> tuple[str, ...]:
            Broken.calls += 1
            if Broken.calls == 1:
                raise RuntimeError("routing bug")
            return super().route(source, event)

    broken = Broken(host.queue)
    app = IngestApp(broken)
    answer = await call(app, "/v1/track", TRACK, auth=basic())
    assert_error(answer, 500)
    await good_request_still_works(app, broken)


async def test_garbage_collector_is_left_as_found(app: IngestApp, host: FakeHost) -> None:
    """Ingest pauses the cyclic collector while it parses a request; it must never leave it off
    (a server that stopped collecting cycles would grow without bound), whatever the request."""
    requests: list[tuple[str, Any, bytes | None]] = [
        ("/v1/track", TRACK, basic()),
        ("/v1/batch", {"batch": [{**TRACK, "type": "track"}, {"type": "nope"}]}, basic()),
        ("/v1/batch", {"batch": [{"type": "nope"}]}, basic()),
        ("/v1/track", b"{not json", basic()),
        ("/v1/track", TRACK, None),
        ("/v1/track", {"event": "no ids"}, basic()),
    ]
    assert gc.isenabled()
    for path, body, auth in requests:
        await call(app, path, body, auth=auth)
        assert gc.isenabled(), path
    gc.disable()
    try:  # paused by someone else: ingest leaves it paused
        answer = await call(app, "/v1/track", TRACK, auth=basic())
        assert answer.status == 200
        assert not gc.isenabled()
    finally:
        gc.enable()
