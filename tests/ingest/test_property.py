"""Property tests on the parser/validator/normaliser: for any JSON-ish input the only errors are
``IngestError``s, and valid events survive the round trip with their fields intact."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventrelay.core.errors import IngestError
from eventrelay.core.spec import CALL_TYPES
from eventrelay.ingest.batch import prepare_batch
from eventrelay.ingest.body import decode, parse_object
from eventrelay.ingest.normalise import iso, normalise
from eventrelay.ingest.validate import validate

NOW = 1_714_564_800.25
KEYS = [
    "type",
    "userId",
    "anonymousId",
    "event",
    "groupId",
    "previousId",
    "messageId",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "sentAt",
    "originalTimestamp",
    "name",
    "writeKey",
    "batch",
    "channel",
]

# what orjson.loads can produce: 64-bit integers, finite floats
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
dates = st.datetimes().map(lambda d: d.isoformat()) | st.sampled_from(["2024-05-01T12:00:00Z", "not a date", ""])
json_values = st.recursive(
    scalars | dates,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=10,
)
events = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=12)


def process(event: Any, call_type: str) -> dict[str, Any]:
    validate(event, call_type)
    return normalise(event, call_type, received_at=NOW, received_iso=iso(NOW), ip="192.0.2.1", channel="server")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(event=events, call_type=st.sampled_from(sorted(CALL_TYPES)))
def test_single_events_raise_only_ingest_errors(event: dict[str, Any], call_type: str) -> None:
    try:
        out = process(event, call_type)
    except IngestError:
        return
    orjson.dumps(out)  # what is stored always serialises
    assert out["type"] == call_type and out["messageId"] and out["receivedAt"]


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    body=st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
    items=st.lists(events | json_values, max_size=6),
)
def test_batches_raise_only_ingest_errors(body: dict[str, Any], items: list[Any]) -> None:
    body["batch"] = items
    try:
        accepted, rejected = prepare_batch(body, received_at=NOW, received_iso=iso(NOW), ip=None, channel="server")
    except IngestError:
        return
    assert len(accepted) + len(rejected) == len(items)
    for event, stored in accepted:
        assert orjson.loads(stored) == event


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), gz=st.booleans())
def test_arbitrary_bytes_raise_only_ingest_errors(data: bytes, gz: bool) -> None:
    try:
        parse_object(decode(data, b"gzip" if gz else None))
    except IngestError:
        pass


ids = st.text(min_size=1, max_size=30)
valid_events = st.fixed_dictionaries(
    {
        "userId": ids,
        "event": ids,
        "properties": st.dictionaries(st.text(max_size=8), scalars, max_size=5),
        "context": st.fixed_dictionaries({"library": st.fixed_dictionaries({"name": ids, "version": ids})}),
    },
    optional={
        "messageId": st.text(min_size=1, max_size=100),
        "anonymousId": st.none() | ids,
        "timestamp": st.just("2024-05-01T11:59:59.000Z"),
    },
)


@settings(max_examples=200, deadline=None)
@given(event=valid_events)
def test_valid_events_round_trip(event: dict[str, Any]) -> None:
    sent = copy.deepcopy(event)
    out = orjson.loads(orjson.dumps(process(orjson.loads(orjson.dumps(event)), "track")))
    for key in ("userId", "event", "properties", "anonymousId"):
        if key in sent:
            assert out[key] == sent[key]
    assert out["context"]["library"] == sent["context"]["library"]
    if "messageId" in sent:
        assert out["messageId"] == sent["messageId"]
    if "timestamp" in sent:
        assert out["originalTimestamp"] == sent["timestamp"]
