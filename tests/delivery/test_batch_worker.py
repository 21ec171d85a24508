"""The delivery engine with a batching destination, over the in-memory queue and log: when batches
leave, per-event results, whole-batch retries, bisection down to a poison event, stopping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from eventrelay.core import telemetry
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.delivery.batch_results import BISECT_AFTER
from eventrelay.destinations.base import BatchLimits, BatchOutcome, SendRequest

from .conftest import Harness, append, delivered, eventually, failing, policy

Answer = tuple[Outcome, set[str]]  # the invoke's outcome and the messageIds it reports failed
BatchResponder = Callable[[list[str], int], Answer]  # (messageIds of the batch, invoke number) -> answer


def everything_delivered(ids: list[str], n: int) -> Answer:
    return delivered(), set()


@dataclass
class FakeBatchDestination:
    """A ``BatchDestination`` answering from ``respond``; ``delay`` seconds per invoke."""

    name: str
    batch: BatchLimits
    respond: BatchResponder = everything_delivered
    delay: float = 0.0
    invokes: list[list[str]] = field(default_factory=list)  # messageIds per invoke, as sent
    sent_at: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def wants(self, event: Mapping[str, Any]) -> bool:
        return True

    async def send(self, request: SendRequest, timeout: float) -> Outcome:  # noqa: ASYNC109
        raise AssertionError("a batching destination gets send_batch")

    def batch_group(self, request: SendRequest) -> str:
        return str(request.event.get("type"))

    async def send_batch(self, requests: Sequence[SendRequest], timeout: float) -> BatchOutcome:  # noqa: ASYNC109
        ids = [r.message_id for r in requests]
        self.invokes.append(ids)
        self.sent_at.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            invoke, failed = self.respond(ids, len(self.invokes))
        finally:
            self.in_flight -= 1
        size = sum(len(r.body) for r in requests) + 12
        if not invoke.ok:
            return BatchOutcome(invoke, [invoke] * len(ids), size)
        item = failing(Category.EXECUTION_ERROR, Verdict.RETRY, error_type="BatchItemFailure")
        return BatchOutcome(invoke, [item if i in failed else invoke for i in ids], size)

    async def close(self) -> None:
        return None

    def sent(self) -> list[str]:
        return [i for invoke in self.invokes for i in invoke]


def limits(max_events: int = 10, max_wait: float = 0.05) -> BatchLimits:
    return BatchLimits(max_events=max_events, max_bytes=1_048_576, max_wait=max_wait, envelope_bytes=12)


def ids(count: int, prefix: str = "m") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


async def start(harness: Harness, dest: FakeBatchDestination, **kw: Any) -> None:
    await harness.engine({dest.name: (dest, policy(**kw))})  # type: ignore[dict-item]


async def test_a_busy_destination_sends_full_batches_without_waiting(harness: Harness) -> None:
    dest = FakeBatchDestination("b-busy", limits(max_events=100, max_wait=30.0))
    await append(harness.queue, ("b-busy",), *ids(250))
    began = time.monotonic()
    await start(harness, dest)

    await eventually(lambda: len(dest.invokes) == 2, what="two full batches")
    assert [len(i) for i in dest.invokes] == [100, 100]
    assert max(dest.sent_at) - began < 5.0  # not max_wait (30 s): full batches leave at once
    await eventually(lambda: sum(s == "delivered" for s in harness.statuses("b-busy").values()) == 200)
    assert len(dest.invokes) == 2  # the last 50 wait for more events, up to max_wait


async def test_an_idle_destination_sends_a_lone_event_max_wait_after_it_arrived(harness: Harness) -> None:
    dest = FakeBatchDestination("b-idle", limits(max_wait=0.3))
    await start(harness, dest)
    await asyncio.sleep(0.05)
    arrived = time.monotonic()
    await append(harness.queue, ("b-idle",), "lone")
    harness.engines[0].notify(["b-idle"])

    await eventually(lambda: dest.invokes == [["lone"]], what="the lone event sent")
    assert 0.25 <= dest.sent_at[0] - arrived <= 0.3 + 0.2


async def test_reported_failures_alone_are_retried_with_their_own_attempt_count(harness: Harness) -> None:
    failed_once = {"m0002", "m0005", "m0007"}

    def respond(batch: list[str], n: int) -> Answer:
        return delivered(), (failed_once & set(batch)) if n == 1 else set()

    dest = FakeBatchDestination("b-partial", limits(max_events=10, max_wait=0.05), respond)
    await append(harness.queue, ("b-partial",), *ids(10))
    await start(harness, dest)

    await eventually(lambda: set(harness.statuses("b-partial").values()) == {"delivered"}, what="all delivered")
    assert len(harness.statuses("b-partial")) == 10
    assert dest.invokes[0] == ids(10) and sorted(dest.sent()[10:]) == sorted(failed_once)  # exactly those again
    attempts = {r.message_id: r.attempt for r in harness.log.records if r.category is Category.DELIVERED}
    assert {m for m, n in attempts.items() if n == 2} == failed_once
    first = [r for r in harness.log.records if r.attempt == 1]
    assert {(r.batch_size, r.batch_id) for r in first} == {(10, first[0].batch_id)}
    assert {r.error_type for r in first if r.category is Category.EXECUTION_ERROR} == {"BatchItemFailure"}


async def test_a_whole_batch_failure_retries_the_same_batch_under_the_same_id(harness: Harness) -> None:
    def respond(batch: list[str], n: int) -> Answer:
        if n == 1:
            return failing(Category.TIMEOUT, Verdict.RETRY), set()
        return delivered(), set()

    dest = FakeBatchDestination("b-whole", limits(max_events=8, max_wait=0.05), respond)
    await append(harness.queue, ("b-whole",), *ids(8))
    await start(harness, dest)

    await eventually(lambda: set(harness.statuses("b-whole").values()) == {"delivered"}, what="all delivered")
    assert dest.invokes == [ids(8), ids(8)]
    by_attempt = {n: {r.batch_id for r in harness.log.records if r.attempt == n} for n in (1, 2)}
    assert len(by_attempt[1]) == 1 and by_attempt[1] == by_attempt[2]
    retry_times = {r.next_attempt_at for r in harness.log.records if r.attempt == 1}
    assert len(retry_times) == 1  # one due time for the whole batch, not a jitter each


async def test_a_poison_event_ends_failed_alone_and_every_other_event_is_delivered(harness: Harness) -> None:
    poison = "m0013"

    def respond(batch: list[str], n: int) -> Answer:
        if poison in batch:
            return failing(Category.EXECUTION_ERROR, Verdict.RETRY, error_type="ValueError"), set()
        return delivered(), set()

    dest = FakeBatchDestination("b-poison", limits(max_events=32, max_wait=0.05), respond)
    await append(harness.queue, ("b-poison",), *ids(32))
    await start(harness, dest, max_attempts=12)

    await eventually(lambda: harness.statuses("b-poison").get(poison) == "failed", within=20, what="poison failed")
    statuses = harness.statuses("b-poison")
    assert all(s == "delivered" for m, s in statuses.items() if m != poison) and len(statuses) == 32
    with_poison = [i for i in dest.invokes if poison in i]
    sizes = [len(i) for i in with_poison]
    # twice whole, then halves recursively (32 -> 16 -> 8 -> 4 -> 2 -> 1), then alone until the cap
    assert sizes[:BISECT_AFTER] == [32] * BISECT_AFTER
    assert sizes[BISECT_AFTER : BISECT_AFTER + 5] == [16, 8, 4, 2, 1]
    assert set(sizes[BISECT_AFTER + 5 :]) == {1} and len(sizes) == 12
    assert sorted(dest.sent().count(m) for m in ids(32) if m != poison)[-1] <= BISECT_AFTER + 5


async def test_batch_invokes_in_flight_are_bounded_by_the_concurrency(harness: Harness) -> None:
    dest = FakeBatchDestination("b-slots", limits(max_events=5, max_wait=0.01), delay=0.05)
    await append(harness.queue, ("b-slots",), *ids(100))
    await start(harness, dest, concurrency=3)

    await eventually(lambda: len(harness.statuses("b-slots")) == 100, what="all recorded")
    assert dest.max_in_flight == 3 and len(dest.invokes) == 20


async def test_stopping_releases_the_jobs_still_waiting_for_their_batch(harness: Harness) -> None:
    dest = FakeBatchDestination("b-stop", limits(max_events=100, max_wait=30.0))
    await append(harness.queue, ("b-stop",), *ids(5))
    engine = await harness.engine({"b-stop": (dest, policy())})  # type: ignore[dict-item]
    await eventually(lambda: all(lease > 0 for _, _, lease in harness.queue._jobs.values()), what="claimed")

    await engine.stop()

    assert dest.invokes == [] and harness.log.records == []
    assert len(await harness.queue.claim("b-stop", 10, 5.0)) == 5  # due again at once


async def test_a_send_batch_that_raises_is_retried_not_lost(harness: Harness) -> None:
    def respond(batch: list[str], n: int) -> Answer:
        if n == 1:
            raise RuntimeError("bug in the destination")
        return delivered(), set()

    dest = FakeBatchDestination("b-raise", limits(max_events=4), respond)
    await append(harness.queue, ("b-raise",), *ids(4))
    await start(harness, dest)

    await eventually(lambda: set(harness.statuses("b-raise").values()) == {"delivered"}, what="delivered")
    assert [r.category for r in harness.log.records[:4]] == [Category.AWS_ERROR] * 4


@pytest.mark.parametrize("count", [37])
async def test_batch_size_and_bytes_are_on_the_metrics(harness: Harness, count: int) -> None:
    def sample(name: str) -> float:
        return telemetry.REGISTRY.get_sample_value(name, {"destination": "b-metrics"}) or 0.0

    dest = FakeBatchDestination("b-metrics", limits(max_events=10, max_wait=0.02))
    await append(harness.queue, ("b-metrics",), *ids(count))
    await start(harness, dest)

    await eventually(lambda: len(harness.statuses("b-metrics")) == count, what="all recorded")
    assert sample("eventrelay_batch_events_count") == 4 and sample("eventrelay_batch_events_sum") == count
    assert sample("eventrelay_batch_bytes_sum") > 0


async def test_filters_apply_to_a_batching_destination_before_its_events_are_batched(harness: Harness) -> None:
    from eventrelay.config.filters import Filter, build_filters
    from eventrelay.delivery.engine import Target

    dest = FakeBatchDestination("b-filter", limits(max_events=10))
    filters = build_filters(None, [Filter.model_validate({"if": 'messageId = "m2"', "drop": True})])
    await harness.engine({"b-filter": Target(dest, policy(), filters)})  # type: ignore[dict-item]
    await append(harness.queue, ("b-filter",), "m1", "m2", "m3")
    await eventually(lambda: len(harness.statuses("b-filter")) == 3 and len(harness.queue._jobs) == 0)

    assert harness.statuses("b-filter") == {"m1": "delivered", "m2": "filtered", "m3": "delivered"}
    assert sorted(dest.sent()) == ["m1", "m3"]  # the filtered event never travels in a batch
