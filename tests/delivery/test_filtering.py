"""Destination filters in the delivery engine: a filtered event is recorded, acked, never sent or retried."""

from __future__ import annotations

import time

import orjson

from eventrelay.config.filters import Filter, build_filters
from eventrelay.core import telemetry
from eventrelay.core.outcome import Category, Outcome
from eventrelay.core.records import Accepted
from eventrelay.delivery.engine import Target
from eventrelay.destinations.base import SendRequest

from .conftest import FakeDestination, Harness, append, eventually, policy


def metric(name: str, **labels: str) -> float:
    return telemetry.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_filtered_event_is_recorded_as_filtered_with_its_filter_and_acked_unsent(harness: Harness) -> None:
    dest = FakeDestination("d-filter")
    filters = build_filters(None, [Filter.model_validate({"if": 'messageId = "m2"', "drop": True})])
    delivered_before = metric("eventrelay_events_delivered_total", destination="d-filter")
    filtered_before = metric("eventrelay_events_filtered_total", destination="d-filter")
    await harness.engine({"d-filter": Target(dest, policy(), filters)})  # type: ignore[dict-item]
    await append(harness.queue, ("d-filter",), "m1", "m2", "m3")
    await eventually(lambda: len(harness.statuses("d-filter")) == 3 and len(harness.queue._jobs) == 0)

    assert harness.statuses("d-filter") == {"m1": "delivered", "m2": "filtered", "m3": "delivered"}
    assert sorted(dest.ids_sent()) == ["m1", "m3"]  # never sent
    (record,) = [r for r in harness.log.records if r.message_id == "m2"]
    assert (record.category, record.status, record.attempt) == (Category.FILTERED, "filtered", 1)
    assert record.filter == 'filters[0]: drop if messageId = "m2"'
    assert record.error_type is None and record.error_message is None  # never an error
    await eventually(lambda: metric("eventrelay_events_filtered_total", destination="d-filter") == filtered_before + 1)
    assert metric("eventrelay_events_delivered_total", destination="d-filter") == delivered_before + 2
    assert metric("eventrelay_delivery_attempts_total", destination="d-filter", category="filtered") == 0


async def test_property_filters_change_what_is_sent_and_only_keeps_out_the_rest(harness: Harness) -> None:
    bodies: list[bytes] = []

    class Recording(FakeDestination):
        async def send(self, request: SendRequest, timeout: float) -> Outcome:  # noqa: ASYNC109
            bodies.append(request.body)
            return await super().send(request, timeout)

    dest = Recording("d-props")
    filters = build_filters(
        'type = "track"', [Filter.model_validate({"drop_properties": ["context.ip", "properties.card.number"]})]
    )
    await harness.engine({"d-props": Target(dest, policy(), filters)})  # type: ignore[dict-item]
    track = {"type": "track", "messageId": "t1", "userId": "u1", "event": "Paid", "context": {"ip": "10.0.0.1"},
             "properties": {"card": {"number": "4111", "brand": "visa"}}}  # fmt: skip
    page = {"type": "page", "messageId": "p1", "userId": "u1"}
    await harness.queue.append(
        [Accepted(e["messageId"], "web", e["type"], time.time(), orjson.dumps(e), ("d-props",)) for e in (track, page)]
    )
    await eventually(lambda: harness.statuses("d-props") == {"t1": "delivered", "p1": "filtered"})
    (body,) = bodies
    assert orjson.loads(body) == {**track, "context": {}, "properties": {"card": {"brand": "visa"}}}
    (kept,) = [r for r in harness.log.records if r.message_id == "p1"]
    assert kept.filter == 'only: type = "track"'
