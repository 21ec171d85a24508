"""Fakes for the delivery engine's unit tests: scripted destinations over the in-memory queue and log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from eventrelay.config.model import DeliveryPolicy
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.core.records import Accepted
from eventrelay.delivery.engine import DeliveryEngine
from eventrelay.deliverylog.memory import MemoryDeliveryLog
from eventrelay.destinations.base import SendRequest
from eventrelay.queue.memory import MemoryQueue

Responder = Callable[[Mapping[str, Any], int], Outcome]  # (event, call number) -> outcome


def delivered() -> Outcome:
    return Outcome(
        Category.DELIVERED,
        Verdict.SUCCESS,
        status_code=200,
        function="fn",
        qualifier="live",
        request={"function": "fn", "invocation_type": "RequestResponse"},
        response_body="null",
    )


def failing(category: Category, verdict: Verdict, **kw: Any) -> Outcome:
    return Outcome(
        category,
        verdict,
        function="fn",
        error_type=kw.pop("error_type", str(category)),
        error_message=kw.pop("error_message", f"{category} happened"),
        **kw,
    )


@dataclass
class FakeDestination:
    """Answers from ``respond``; ``delay`` seconds per send (cancellable, like a real wire wait)."""

    name: str
    respond: Responder = field(default=lambda event, n: delivered())
    delay: float = 0.0
    sent: list[tuple[float, str]] = field(default_factory=list)  # (time, messageId) per send started
    sources: list[str] = field(default_factory=list)  # the request's source per send started
    finished: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    closed: bool = False

    def wants(self, event: Mapping[str, Any]) -> bool:
        return True

    async def send(self, request: SendRequest, timeout: float) -> Outcome:  # noqa: ASYNC109 (the Destination protocol)
        event = request.event
        started = time.monotonic()
        self.sent.append((started, str(event["messageId"])))
        self.sources.append(request.source)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(min(self.delay, timeout))
                if self.delay >= timeout:
                    return Outcome(
                        Category.TIMEOUT,
                        Verdict.RETRY,
                        error_message="no answer in time",
                        latency_ms=timeout * 1000,
                    )
            outcome = self.respond(event, len(self.sent))
            outcome.latency_ms = (time.monotonic() - started) * 1000.0  # the destination measures its attempt
            self.finished.append(str(event["messageId"]))
            return outcome
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        self.closed = True

    def ids_sent(self) -> list[str]:
        return [m for _, m in self.sent]


def policy(**kw: Any) -> DeliveryPolicy:
    base: dict[str, Any] = {"timeout": 2.0, "backoff_base": 0.02, "backoff_cap": 0.1, "concurrency": 8}
    base.update(kw)
    return DeliveryPolicy(**base)


def event(message_id: str, call_type: str = "track", received_at: float | None = None) -> Accepted:
    body = {"type": call_type, "messageId": message_id, "userId": "u1", "event": "Clicked"}
    return Accepted(
        message_id,
        "web",
        call_type,
        received_at if received_at is not None else time.time(),
        orjson.dumps(body),
    )


async def append(
    queue: MemoryQueue,
    destinations: tuple[str, ...],
    *ids: str,
    received_at: float | None = None,
) -> None:
    from dataclasses import replace

    await queue.append([replace(event(i, received_at=received_at), destinations=destinations) for i in ids])


async def eventually(check: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.005)


@dataclass
class Harness:
    queue: MemoryQueue
    log: MemoryDeliveryLog
    engines: list[DeliveryEngine] = field(default_factory=list)

    async def engine(self, targets: dict[str, tuple[FakeDestination, DeliveryPolicy]]) -> DeliveryEngine:
        engine = DeliveryEngine(self.queue, self.log, targets)  # type: ignore[arg-type]
        await engine.start()
        self.engines.append(engine)
        return engine

    def statuses(self, destination: str) -> dict[str, str]:
        return {m: r.status for (m, d), r in self.log.rows.items() if d == destination}


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness(MemoryQueue(), MemoryDeliveryLog())
    yield h
    for engine in h.engines:
        await engine.stop()
