"""JetStream specifics beyond the shared queue contract: several processes on one stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import nats
import pytest

from eventrelay.core.errors import QueueFull
from eventrelay.core.records import Accepted, Job
from eventrelay.queue.jetstream import JetStreamQueue

from .conftest import QueueFactory

DEADLINE = 15.0


def event(*destinations: str, message_id: str | None = None) -> Accepted:
    mid = message_id or str(uuid.uuid4())
    body = b'{"type":"track","event":"Order Completed","messageId":"%s"}' % mid.encode()
    return Accepted(mid, "web", "track", time.time(), body, destinations or ("lambda",))


async def drain(queue: JetStreamQueue, seen: list[str], stop: asyncio.Event, progress: asyncio.Event) -> None:
    """A delivery process: claim, 'deliver' (note the id), ack, until told to stop."""
    while not stop.is_set():
        jobs = await queue.claim("lambda", 16, 30.0)
        for job in jobs:
            seen.append(job.message_id)
            await queue.ack(job)
        if jobs:
            progress.set()
        else:
            await asyncio.sleep(0.01)


async def test_nats_msg_id_dedups_across_ingest_processes(make_queue: QueueFactory, nats_url: str) -> None:
    one, two = await make_queue(), await make_queue()
    item = event("lambda")

    assert await one.append([item]) == [True]
    assert await two.append([item]) == [False]  # the other ingest node resent it: the stream already has it

    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(one.names.stream)
        msg = await nc.jetstream().get_msg(one.names.stream, 1)
    finally:
        await nc.close()
    assert info.state.messages == 1
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == f"lambda/{item.message_id}"


async def test_two_delivery_processes_share_work_without_duplicates(make_queue: QueueFactory) -> None:
    ingest, a, b = await make_queue(), await make_queue(), await make_queue()
    items = [event("lambda") for _ in range(400)]
    for i in range(0, len(items), 100):
        await ingest.append(items[i : i + 100])
    seen_a: list[str] = []
    seen_b: list[str] = []
    stop, progress = asyncio.Event(), asyncio.Event()

    workers = [asyncio.create_task(drain(a, seen_a, stop, progress)),
               asyncio.create_task(drain(b, seen_b, stop, progress))]  # fmt: skip
    deadline = time.monotonic() + DEADLINE
    while len(seen_a) + len(seen_b) < len(items) and time.monotonic() < deadline:
        progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.wait(), 1.0)
    await asyncio.sleep(0.3)  # anything delivered twice would show up now
    stop.set()
    await asyncio.gather(*workers)

    assert sorted(seen_a + seen_b) == sorted(i.message_id for i in items)  # each exactly once
    assert seen_a and seen_b, "both processes got work"
    assert await ingest.depth("lambda") == 0


async def test_retry_delay_holds_for_every_process(make_queue: QueueFactory) -> None:
    a, b = await make_queue(), await make_queue()
    item = event()
    await a.append([item])
    [job] = await a.claim("lambda", 10, 30.0)
    delay = 1.0

    await a.retry(job, time.time() + delay)
    retried = time.monotonic()

    assert await b.claim("lambda", 10, 30.0) == []
    again: list[Job] = []
    while not again and time.monotonic() - retried < DEADLINE:
        again = await b.claim("lambda", 10, 30.0)
        await asyncio.sleep(0.02)
    assert time.monotonic() - retried >= delay * 0.9
    assert [(j.message_id, j.attempts) for j in again] == [(item.message_id, 1)]
    assert again[0].first_attempt_at is not None


async def test_dead_letter_keeps_the_reason_and_another_process_redrives_it(
    make_queue: QueueFactory, nats_url: str
) -> None:
    a, b = await make_queue(), await make_queue()
    item = event()
    await a.append([item])
    [job] = await a.claim("lambda", 10, 30.0)

    await a.dead_letter(job, "discarded", "ResourceNotFoundException: Function not found:\narn:aws:lambda:x")

    nc = await nats.connect(nats_url)
    try:
        dead = await nc.jetstream().get_msg(a.names.dead_stream, 1)
    finally:
        await nc.close()
    assert dead.headers is not None
    assert dead.headers["Er-Dead-Status"] == "discarded"
    assert dead.headers["Er-Dead-Reason"] == "ResourceNotFoundException: Function not found: arn:aws:lambda:x"
    assert dead.data == item.body
    assert await b.depth("lambda") == 0

    assert await b.redrive("lambda", [item.message_id]) == 1
    [back] = await a.claim("lambda", 10, 30.0)
    assert (back.message_id, back.attempts, back.body) == (item.message_id, 0, item.body)


async def test_bound_is_shared_by_every_ingest_process(make_queue: QueueFactory) -> None:
    a, b = await make_queue(max_events=10), await make_queue(max_events=10)
    await a.append([event() for _ in range(6)])
    await b.append([event() for _ in range(4)])

    await asyncio.sleep(0.6)  # each process recounts the waiting jobs at most twice a second

    for ingest in (a, b):
        with pytest.raises(QueueFull, match=r"10 jobs are waiting .* storage\.max_events is 10"):
            await ingest.append([event()])


async def test_lease_longer_than_ack_wait_is_kept_alive(make_queue: QueueFactory) -> None:
    a, b = await make_queue(), await make_queue()
    await a.append([event(), event()])
    [first] = await a.claim("lambda", 1, 0.3)  # the first claim sets AckWait to 0.3 s
    await a.ack(first)

    [held] = await a.claim("lambda", 1, 3.0)  # a longer lease on the same consumer
    await asyncio.sleep(1.0)

    assert await b.claim("lambda", 10, 3.0) == []  # still hidden after three AckWaits
    await a.ack(held)
    assert await b.depth("lambda") == 0
