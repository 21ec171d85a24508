"""Direct hand-off (delivery/handoff.py) on the real SQLite queue: new jobs leased to the workers
that reserved room as the append commits, settled by the right row, never claimed twice, and
given back (claimable) when nobody takes them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from eventrelay.core.errors import QueueFull
from eventrelay.core.records import Accepted
from eventrelay.delivery.engine import DeliveryEngine
from eventrelay.delivery.handoff import append_with_handoff
from eventrelay.deliverylog.memory import MemoryDeliveryLog
from eventrelay.queue.sqlite import SQLiteQueue
from tests.delivery.conftest import FakeDestination, event, eventually, policy


def items(destinations: tuple[str, ...], *ids: str) -> list[Accepted]:
    return [replace(event(i), destinations=destinations) for i in ids]


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[SQLiteQueue]:
    q = SQLiteQueue(tmp_path / "queue.db", max_events=1000)
    await q.start()
    yield q
    await q.close()


async def test_handed_jobs_are_leased_rows_with_their_own_handles(queue: SQLiteQueue) -> None:
    await queue.append(items(("a",), "before-1", "before-2"))  # rows before: ids are not 1..n
    first, second = await asyncio.gather(  # two appends and an ack share one transaction
        queue.append_handoff(items(("a", "b"), "m1", "m2", "m3"), {"a": (2, 60.0), "b": (5, 60.0)}),
        queue.append_handoff(items(("a",), "m4"), {"a": (1, 60.0)}),
    )
    fresh, handed = first
    assert fresh == [True, True, True]
    assert sorted((j.destination, j.message_id) for j in handed) == [
        ("a", "m1"),
        ("a", "m2"),
        ("b", "m1"),
        ("b", "m2"),
        ("b", "m3"),
    ]
    assert [(j.destination, j.message_id) for j in second[1]] == [("a", "m4")]
    # what was not handed is claimable; what was handed is leased: a claim does not see it
    claimed = await queue.claim("a", 100, 60.0)
    assert sorted(j.message_id for j in claimed) == ["before-1", "before-2", "m3"]
    assert await queue.claim("b", 100, 60.0) == []
    # each handle is its own row: acking the handed jobs leaves exactly the claimed ones
    for job in [*handed, *second[1]]:
        assert job.body and job.attempts == 0 and job.received_at <= time.time()
        await queue.ack(job)
    assert await queue.depth("b") == 0
    assert await queue.depth("a") == 3  # before-1, before-2, m3: claimed, not settled


async def test_duplicates_are_not_handed_and_a_lapsed_lease_makes_the_job_due(queue: SQLiteQueue) -> None:
    fresh, handed = await queue.append_handoff(items(("a",), "x1"), {"a": (4, 0.05)})
    assert fresh == [True] and len(handed) == 1
    again, handed_again = await queue.append_handoff(items(("a",), "x1"), {"a": (4, 60.0)})
    assert again == [False] and handed_again == []
    await asyncio.sleep(0.1)  # the worker that took it never settled: the lease lapses
    assert [j.message_id for j in await queue.claim("a", 10, 60.0)] == ["x1"]


async def test_engine_delivers_handed_jobs_without_claiming_them(queue: SQLiteQueue) -> None:
    dest = FakeDestination("a")
    log = MemoryDeliveryLog()
    engine = DeliveryEngine(queue, log, {"a": (dest, policy(concurrency=8))})  # type: ignore[dict-item]
    await engine.start()
    claims = 0
    claim = queue.claim

    async def counting(*args: object, **kw: object) -> object:
        nonlocal claims
        claims += 1
        return await claim(*args, **kw)  # type: ignore[arg-type]

    queue.claim = counting  # type: ignore[method-assign]
    try:
        await asyncio.sleep(0.2)  # the worker's first claims (empty queue) are done
        before = claims
        covered: set[str] = set()
        future = append_with_handoff(queue, engine, items(("a",), "h1", "h2", "h3"), {"a": 3}, covered)
        assert future is not None
        assert await future == [True, True, True]
        assert covered == {"a"}  # all three were handed: ingest need not wake the worker
        await eventually(lambda: sorted(dest.ids_sent()) == ["h1", "h2", "h3"], what="handed jobs sent")
        await eventually(lambda: {(m, r.status) for (m, _), r in log.rows.items()} >= {("h1", "delivered")})
        assert claims - before <= 1  # no claim was needed for them (an idle poll may run)
        for _ in range(500):  # the acks commit
            if await queue.depth("a") == 0:
                break
            await asyncio.sleep(0.02)
        assert await queue.depth("a") == 0
    finally:
        await engine.stop()


async def test_room_is_given_back_when_the_append_fails(tmp_path: Path) -> None:
    queue = SQLiteQueue(tmp_path / "queue.db", max_events=2)
    await queue.start()
    dest = FakeDestination("a", delay=5.0)  # slots stay busy once taken
    engine = DeliveryEngine(queue, MemoryDeliveryLog(), {"a": (dest, policy(concurrency=4))})  # type: ignore[dict-item]
    await engine.start()
    try:
        future = append_with_handoff(queue, engine, items(("a",), "f1", "f2", "f3"), {"a": 3}, set())
        assert future is not None
        with pytest.raises(QueueFull):
            await future
        reservation = engine.reserve({"a": 10})  # the failed append's room is free again
        assert reservation is not None and reservation.offers["a"][0] == 4
        reservation.cancel()
    finally:
        await engine.stop(wait_seconds=0.1)
        await queue.close()


async def test_a_worker_stopped_before_the_append_commits_releases_the_handed_jobs(queue: SQLiteQueue) -> None:
    dest = FakeDestination("a")
    engine = DeliveryEngine(queue, MemoryDeliveryLog(), {"a": (dest, policy(concurrency=4))})  # type: ignore[dict-item]
    await engine.start()
    reservation = engine.reserve({"a": 1})  # an append in progress reserved room ...
    assert reservation is not None
    await engine.stop()  # ... then the destination was reconfigured away
    fresh, handed = await queue.append_handoff(items(("a",), "r1"), reservation.offers)
    assert fresh == [True] and len(handed) == 1
    reservation.hand_over(handed)
    for _ in range(100):  # the lease is released (not left to lapse 30 s later)
        claimed = await queue.claim("a", 10, 60.0)
        if claimed:
            break
        await asyncio.sleep(0.02)
    assert [j.message_id for j in claimed] == ["r1"] and dest.sent == []


async def test_an_append_reserves_no_more_room_than_it_has_jobs(queue: SQLiteQueue) -> None:
    """A single event reserves one slot: the rest stays free for the claim loop (reserving the
    hand-off maximum per append left a busy worker with every slot promised and nothing claimed)."""
    dest = FakeDestination("a", delay=5.0)
    engine = DeliveryEngine(queue, MemoryDeliveryLog(), {"a": (dest, policy(concurrency=8))})  # type: ignore[dict-item]
    await engine.start()
    try:
        first = engine.reserve({"a": 1})
        second = engine.reserve({"a": 2})
        assert first is not None and first.offers["a"][0] == 1
        assert second is not None and second.offers["a"][0] == 2
        rest = engine.reserve({"a": 100})
        assert rest is not None and rest.offers["a"][0] == 5  # 8 slots: 1 + 2 promised already
        for reservation in (first, second, rest):
            reservation.cancel()
    finally:
        await engine.stop(wait_seconds=0.1)
