"""Flow control inside the engine (``delivery/flow.py``): one adaptive limit per function, over
the in-memory queue and log with scripted destinations that name their functions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eventrelay.config.filters import Filter, build_filters
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.delivery.engine import Target
from eventrelay.destinations.base import SendRequest

from .conftest import FakeDestination, Harness, append, delivered, eventually, failing, policy


@dataclass
class TwoFunctions(FakeDestination):
    """Track events go to ``fn-track``, the rest to ``fn-other``; ``fn-track`` takes ``capacity``
    invocations at once and throttles the rest, answering with ``retry_after``."""

    capacity: int = 2
    retry_after: float | None = None
    throttled_at: list[float] = field(default_factory=list)  # when each throttle was answered
    running: dict[str, int] = field(default_factory=lambda: {"fn-track": 0, "fn-other": 0})
    peak: dict[str, int] = field(default_factory=lambda: {"fn-track": 0, "fn-other": 0})

    def target(self, event: Mapping[str, Any]) -> str:
        return "fn-track" if event.get("type") == "track" else "fn-other"

    def targets(self) -> tuple[str, ...]:
        return ("fn-track", "fn-other")

    async def reserved_concurrency(self, target: str, timeout: float) -> int | None:  # noqa: ASYNC109
        return None

    async def send(self, request: SendRequest, timeout: float) -> Outcome:  # noqa: ASYNC109
        fn = self.target(request.event)
        if fn == "fn-track" and self.running[fn] >= self.capacity:
            self.sent.append((time.monotonic(), str(request.event["messageId"])))
            await asyncio.sleep(0.002)  # a 429 comes back quickly, but over the wire
            self.throttled_at.append(time.monotonic())
            return failing(Category.THROTTLED, Verdict.RETRY, status_code=429, retry_after=self.retry_after)
        self.running[fn] += 1
        self.peak[fn] = max(self.peak[fn], self.running[fn])
        try:
            return await super().send(request, timeout)
        finally:
            self.running[fn] -= 1


async def append_typed(harness: Harness, destination: str, call_type: str, ids: list[str]) -> None:
    from dataclasses import replace

    from .conftest import event

    await harness.queue.append([replace(event(i, call_type), destinations=(destination,)) for i in ids])


def flow_of(harness: Harness, destination: str) -> dict[str, dict[str, Any]]:
    return {f["function"]: f for f in harness.engines[0].status()[destination]["flow"]}


async def test_a_throttled_function_is_slowed_alone(harness: Harness) -> None:
    dest = TwoFunctions("d-two", delay=0.05, capacity=2)
    await harness.engine({"d-two": (dest, policy(concurrency=16, backoff_base=0.01, backoff_cap=0.02))})
    await append_typed(harness, "d-two", "track", [f"t{i}" for i in range(60)])
    await append_typed(harness, "d-two", "identify", [f"i{i}" for i in range(60)])
    await eventually(lambda: len(harness.statuses("d-two")) == 120, within=20)
    await eventually(lambda: set(harness.statuses("d-two").values()) == {"delivered"}, within=20)
    flow = flow_of(harness, "d-two")
    assert flow["fn-track"]["limit"] < 16  # cut by its throttles
    assert flow["fn-other"]["limit"] == 16  # never throttled: not slowed
    assert dest.peak["fn-other"] > 8


async def test_throttled_attempts_never_use_up_the_attempt_cap(harness: Harness) -> None:
    dest = FakeDestination(
        "d-429s",
        respond=lambda e, n: delivered() if n > 6 else failing(Category.THROTTLED, Verdict.RETRY, status_code=429),
    )
    await harness.engine({"d-429s": (dest, policy(max_attempts=2, backoff_base=0.01, backoff_cap=0.02))})
    await append(harness.queue, ("d-429s",), "m1")
    await eventually(lambda: harness.statuses("d-429s").get("m1") == "delivered", within=20)
    assert len(dest.sent) == 7
    assert [r.attempt for r in harness.log.records] == [1] * 7  # six throttles, then attempt 1 delivered


async def test_a_throttle_with_retry_after_holds_the_functions_other_jobs_back(harness: Harness) -> None:
    dest = TwoFunctions("d-ra", delay=0.02, capacity=1, retry_after=0.3)
    await harness.engine({"d-ra": (dest, policy(concurrency=4, backoff_base=0.01, backoff_cap=0.02))})
    await append_typed(harness, "d-ra", "track", [f"t{i}" for i in range(6)])
    await eventually(lambda: set(harness.statuses("d-ra").values()) == {"delivered"} and len(dest.finished) == 6)
    assert dest.throttled_at
    starts = [t for t, _ in dest.sent]
    for answered in dest.throttled_at:
        assert [t for t in starts if answered < t < answered + 0.29] == []


async def test_a_filtered_event_does_not_wait_for_its_held_back_function(harness: Harness) -> None:
    dest = TwoFunctions("d-held", capacity=0, retry_after=5.0)  # fn-track throttles all, holds back 5 s
    filters = build_filters(None, [Filter.model_validate({"if": 'messageId = "f1"', "drop": True})])
    await harness.engine({"d-held": Target(dest, policy(concurrency=4), filters)})  # type: ignore[dict-item]
    await append_typed(harness, "d-held", "track", ["t0"])
    await eventually(lambda: harness.statuses("d-held") == {"t0": "retrying"})
    started = time.monotonic()
    await append_typed(harness, "d-held", "track", ["f1"])
    await eventually(lambda: harness.statuses("d-held").get("f1") == "filtered")
    assert time.monotonic() - started < 2.0  # settled at once, not after the 5 s Retry-After
