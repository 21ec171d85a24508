"""Adversarial input of issue 19 through the Tracking API: JSON nested past every limit, numbers too
large to keep as ids, events at the edge of the 32 KB limit. Every answer is a 2xx or a 4xx naming
the field and the limit, never a 5xx, and a batch keeps its valid items whatever sits beside them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventrelay.core.spec import MAX_EVENT_DEPTH
from eventrelay.ingest.app import IngestApp
from tests.ingest.conftest import FakeHost, basic, call

TRACK = {"userId": "u1", "event": "Order Completed", "properties": {"total": 12.5}}
VALID_ITEM = {**TRACK, "type": "track", "messageId": "the-valid-one"}
DEPTH_LIMIT = "64 levels of nesting per event"


PLACEHOLDER = "__structure__"


def json_text(value: Any) -> bytes:
    """``value`` as JSON, integers of any size exact (as a client could send them)."""
    return json.dumps(value).encode()


def with_structure(structure: bytes, place: tuple[str, str | None], extra: dict[str, Any]) -> bytes:
    key, inner = place
    event: dict[str, Any] = {**TRACK, **extra}
    event[key] = {inner: PLACEHOLDER} if inner else PLACEHOLDER
    return json_text(event).replace(json_text(PLACEHOLDER), structure)


def nested(levels: int) -> bytes:
    """``levels`` objects one in another, as JSON: ``{"a":{"a":...1...}}`` (written out: a client
    can send what no encoder here writes)."""
    return b'{"a":' * levels + b"1" + b"}" * levels


def with_properties_depth(levels: int, **fields: Any) -> bytes:
    """A track event whose deepest object is at ``levels`` (the event is level 1, properties 2)."""
    return with_structure(nested(levels - 1), ("properties", None), fields)


@pytest.mark.parametrize("levels", [MAX_EVENT_DEPTH + 1, 300, 1000])
async def test_a_deep_event_is_a_400_naming_the_path_and_the_limit(app: IngestApp, host: FakeHost, levels: int) -> None:
    answer = await call(app, "/v1/track", with_properties_depth(levels), auth=basic())
    assert answer.status == 400, answer.body
    error = answer.json()["error"]
    assert error["limit"] == DEPTH_LIMIT
    assert error["field"].startswith("properties.a.a.a")
    assert f"is nested deeper than the limit of {DEPTH_LIMIT}" in error["message"]
    assert await host.stored() == []


async def test_an_event_at_the_depth_limit_is_kept(app: IngestApp, host: FakeHost) -> None:
    answer = await call(app, "/v1/track", with_properties_depth(MAX_EVENT_DEPTH), auth=basic())
    assert answer.status == 200, answer.body
    (event,) = await host.stored()
    assert orjson.dumps(event["properties"]) == nested(MAX_EVENT_DEPTH - 1)


async def test_a_body_past_the_parsers_depth_is_a_400_naming_the_limit(app: IngestApp) -> None:
    answer = await call(
        app, "/v1/track", b'{"userId":"u","event":"e","properties":' + b"[" * 1100 + b"]" * 1100 + b"}", auth=basic()
    )
    assert answer.status == 400
    error = answer.json()["error"]
    assert (error["field"], error["limit"]) == ("body", DEPTH_LIMIT)


@pytest.mark.parametrize("levels", [MAX_EVENT_DEPTH + 1, 260, 1000])
async def test_a_deep_batch_item_is_rejected_alone_and_the_valid_one_kept(
    app: IngestApp, host: FakeHost, levels: int
) -> None:
    deep = with_properties_depth(levels, type="track", messageId="the-deep-one")
    answer = await call(app, "/v1/batch", b'{"batch":[%s,%s]}' % (deep, orjson.dumps(VALID_ITEM)), auth=basic())
    assert answer.status == 200, answer.body
    doc = answer.json()
    assert doc["accepted"] == 1
    (rejected,) = doc["rejected"]
    assert (rejected["index"], rejected["messageId"]) == (0, "the-deep-one")
    assert rejected["field"].startswith("properties.a.a") and DEPTH_LIMIT in rejected["error"]
    assert [e["messageId"] for e in await host.stored()] == ["the-valid-one"]


async def test_a_deep_batch_level_context_refuses_the_batch_naming_it(app: IngestApp, host: FakeHost) -> None:
    body = b'{"batch":[%s],"context":%s}' % (orjson.dumps(VALID_ITEM), nested(300))
    answer = await call(app, "/v1/batch", body, auth=basic())
    assert answer.status == 400
    error = answer.json()["error"]
    assert error["field"].startswith("context.a.a") and error["limit"] == DEPTH_LIMIT
    assert await host.stored() == []


@pytest.mark.parametrize("key", ["userId", "anonymousId"])
async def test_an_id_too_large_to_keep_exactly_is_a_400_naming_it(app: IngestApp, host: FakeHost, key: str) -> None:
    other = "anonymousId" if key == "userId" else "userId"
    body = b'{"event":"e","%s":"x","%s":%d}' % (other.encode(), key.encode(), 2**70)
    answer = await call(app, "/v1/track", body, auth=basic())
    assert answer.status == 400
    error = answer.json()["error"]
    assert error["field"] == key and "send it as a string" in error["message"]
    batch = b'{"batch":[{"type":"track","event":"e","userId":%d},%s]}' % (2**70, orjson.dumps(VALID_ITEM))
    answer = await call(app, "/v1/batch", batch, auth=basic())
    assert answer.status == 200
    assert answer.json()["rejected"][0]["field"] == "userId"
    assert [e["messageId"] for e in await host.stored()] == ["the-valid-one"]


async def test_integer_ids_are_kept_exactly(app: IngestApp, host: FakeHost) -> None:
    body = b'{"event":"e","userId":%d,"anonymousId":%d}' % (2**63 + 1, 2**60 + 1)
    assert (await call(app, "/v1/track", body, auth=basic())).status == 200
    (event,) = await host.stored()
    assert (event["userId"], event["anonymousId"]) == (str(2**63 + 1), str(2**60 + 1))


def event_of_size(size: int) -> dict[str, Any]:
    """A track event whose compact JSON (as a client sends it) is ``size`` bytes."""
    event: dict[str, Any] = {"userId": "u1", "event": "Big", "properties": {"blob": ""}}
    event["properties"]["blob"] = "x" * (size - len(orjson.dumps(event)))
    assert len(orjson.dumps(event)) == size
    return event


@pytest.mark.parametrize(("size", "kept"), [(32 * 1024, True), (32 * 1024 + 100, True), (32 * 1024 + 600, False)])
async def test_one_definition_of_the_event_limit_for_track_and_batch_items(
    app: IngestApp, host: FakeHost, size: int, kept: bool
) -> None:
    """An event of 32 KB as the client sent it is kept, by /v1/track and in a batch alike; one
    over the limit is refused by both with the same measure (stored size, 512 B for server fields)."""
    event = event_of_size(size)
    single = await call(app, "/v1/track", event, auth=basic())
    batch = await call(
        app, "/v1/batch", {"batch": [{**event, "type": "track"}, {**TRACK, "type": "track"}]}, auth=basic()
    )
    assert single.status == (200 if kept else 400)
    assert batch.status == 200
    if kept:
        assert batch.json() == {"success": True}
    else:
        (rejected,) = batch.json()["rejected"]
        measure = "the limit is 32768 bytes (32 KB per event) plus 512 bytes for the fields the server adds"
        assert measure in single.json()["error"]["message"] and measure in rejected["error"]
    assert len(await host.stored()) == (3 if kept else 1)


# -- no input is a 5xx: deep and wide structures anywhere in an event ------------------------------
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)  # beyond 64 bits the parser reads a float
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
wide = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=6), inner, max_size=30),
    max_leaves=200,
)
depths = st.sampled_from([63, 64, 65, 253, 254, 255, 256, 1021, 1022, 1023, 1024, 1025]) | st.integers(0, 1100)
places = st.sampled_from([("properties", "x"), ("context", "x"), ("traits", "x"), ("userId", None), ("extra", None)])


@st.composite
def deep_structures(draw: st.DrawFn) -> bytes:
    """JSON nested ``depth`` levels (objects and arrays mixed) around a wide value, with a wide array beside."""
    depth = draw(depths)
    kinds = draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
    opened = b"".join(b'{"k":' if is_object else b"[" for is_object in kinds)
    closed = b"".join(b"}" if is_object else b"]" for is_object in reversed(kinds))
    breadth = draw(st.integers(0, 3000))
    return opened + json_text(draw(wide)) + closed if breadth < 1500 else b"[" + b",".join([b"[]"] * breadth) + b"]"


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(
    structure=deep_structures(),
    place=places,
    extra=st.dictionaries(st.sampled_from(["messageId", "anonymousId", "sentAt"]), leaves, max_size=2),
)
def test_no_structure_anywhere_in_an_event_is_a_5xx(
    structure: bytes, place: tuple[str, str | None], extra: dict[str, Any]
) -> None:
    async def run() -> None:
        host = FakeHost()
        app = IngestApp(host)
        single = await call(app, "/v1/track", with_structure(structure, place, extra), auth=basic())
        assert single.status in (200, 400), single.body
        assert single.json()["success"] is (single.status == 200)
        item = with_structure(structure, place, {**extra, "type": "track"})
        batch = await call(app, "/v1/batch", b'{"batch":[%s,%s]}' % (item, orjson.dumps(VALID_ITEM)), auth=basic())
        assert batch.status in (200, 400), batch.body
        stored = [e["messageId"] for e in await host.stored()]
        if batch.status == 400:  # only a body the parser cannot read at all is refused whole
            assert batch.json()["error"]["limit"] == DEPTH_LIMIT
            assert "the-valid-one" not in stored
        else:
            assert "the-valid-one" in stored

    asyncio.run(run())
