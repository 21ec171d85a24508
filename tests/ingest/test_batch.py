"""batch.py: merging batch-level fields, per-item errors, limits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from eventrelay.core.errors import PayloadError
from eventrelay.core.spec import MAX_BATCH_EVENTS
from eventrelay.ingest.batch import batch_items, prepare_batch
from eventrelay.ingest.normalise import iso

NOW = 1_714_564_800.0


def prepare(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    accepted, rejected = prepare_batch(body, received_at=NOW, received_iso=iso(NOW), ip="192.0.2.1", channel="server")
    for event, stored in accepted:
        assert orjson.loads(stored) == event
    return [event for event, _ in accepted], rejected


def test_batch_level_context_and_integrations_merge_item_keys_win() -> None:
    body = {
        "context": {"library": {"name": "analytics-python"}, "locale": "en"},
        "integrations": {"All": False, "AWS Lambda": True},
        "batch": [
            {"type": "track", "userId": "u", "event": "A", "context": {"locale": "fr"}},
            {"type": "identify", "userId": "u", "integrations": {"AWS Lambda": False}},
        ],
    }
    events, rejected = prepare(body)
    assert rejected == []
    assert events[0]["context"] == {
        "library": {"name": "analytics-python"},
        "locale": "fr",
        "ip": "192.0.2.1",
    }
    assert events[1]["context"] == {
        "library": {"name": "analytics-python"},
        "locale": "en",
        "ip": "192.0.2.1",
    }
    assert events[0]["integrations"] == {"All": False, "AWS Lambda": True}
    assert events[1]["integrations"] == {"All": False, "AWS Lambda": False}
    assert events[0]["context"] is not events[1]["context"]


def test_batch_sent_at_applies_to_items() -> None:
    body = {
        "sentAt": iso(NOW + 10),
        "batch": [{"type": "track", "userId": "u", "event": "A", "timestamp": iso(NOW + 8)}],
    }
    (event,), _ = prepare(body)
    assert event["timestamp"] == iso(NOW - 2)
    assert event["sentAt"] == iso(NOW + 10)


def test_partial_acceptance_lists_rejected_items() -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "u", "event": "ok", "messageId": "m0"},
            {"type": "track", "userId": "u", "messageId": "m1"},
            {"type": "shout", "userId": "u", "messageId": "m2"},
            "not an object",
            {"type": "track", "userId": "u", "event": "x", "properties": [1], "messageId": "m4"},
        ]
    }
    events, rejected = prepare(body)
    assert [e["messageId"] for e in events] == ["m0"]
    assert [(r.index, r.message_id, r.field) for r in rejected] == [
        (1, "m1", "event"),
        (2, "m2", "type"),
        (3, None, "batch"),
        (4, "m4", "properties"),
    ]
    assert "type must be one of alias, group, identify, page, screen, track" in rejected[1].error


def test_oversize_item_is_rejected_alone() -> None:
    big = {"type": "track", "userId": "u", "event": "big", "properties": {"blob": "x" * 40_000}}
    events, rejected = prepare({"batch": [big, {"type": "identify", "userId": "u"}]})
    assert len(events) == 1
    assert rejected[0].index == 0
    assert "the limit is 32768 bytes (32 KB per event) plus 512 bytes" in rejected[0].error


def test_item_just_under_the_limit_is_kept() -> None:
    item = {"type": "track", "userId": "u", "event": "e", "properties": {"blob": ""}}
    item["properties"]["blob"] = "x" * (32 * 1024 - len(orjson.dumps(item)))
    assert len(orjson.dumps(item)) == 32 * 1024
    events, rejected = prepare({"batch": [item], "context": {"library": {"name": "analytics-python"}}})
    assert (len(events), rejected) == (1, [])


def test_too_many_items() -> None:
    items = [{"type": "identify", "userId": "u"}] * (MAX_BATCH_EVENTS + 1)
    with pytest.raises(PayloadError) as err:
        batch_items({"batch": items})
    assert err.value.message == "batch holds 2501 events; the limit is 2500 events (2,500 events per batch)"


@pytest.mark.parametrize("body", [{}, {"batch": {}}, {"batch": []}, {"batch": [], "context": 1}])
def test_batch_shape(body: dict[str, Any]) -> None:
    with pytest.raises(PayloadError) as err:
        batch_items(body)
    assert err.value.field == "batch"


def test_batch_level_context_must_be_an_object() -> None:
    with pytest.raises(PayloadError) as err:
        batch_items({"batch": [{}], "context": "x"})
    assert err.value.field == "context"


def test_write_key_is_stripped_from_items() -> None:
    (event,), _ = prepare({"writeKey": "k" * 20, "batch": [{"type": "identify", "userId": "u", "writeKey": "k"}]})
    assert "writeKey" not in event
