"""The queue contract, per-user ordering (``OrderedQueue``): for an ordered destination a claim
hands out only each lane's head, and settling the head lets the next go; checked on every backend."""

from __future__ import annotations

import time
import uuid

import pytest

from eventrelay.core.records import Accepted, Job
from eventrelay.queue.base import OrderedQueue, Queue
from tests.contract.conftest import Queues
from tests.contract.test_queue_contract import DEADLINE, LEASE, claim_within

DEST = "ordered"


def user_event(lane: str, n: int, *destinations: str) -> Accepted:
    mid = f"{lane}-{n}-{uuid.uuid4().hex[:8]}"
    body = b'{"type":"track","event":"E","messageId":"%s"}' % mid.encode()
    return Accepted(mid, "web", "track", 1_700_000_000.0 + n, body, destinations or (DEST,), lane=lane)


async def ordered(queue: Queue, *destinations: str) -> OrderedQueue:
    assert isinstance(queue, OrderedQueue)
    await queue.order_lanes(destinations or (DEST,))
    return queue


async def drain(queue: Queue, destination: str = DEST) -> list[Job]:
    """Claim whatever is due now, until a claim comes back empty (short deadline)."""
    out: list[Job] = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        jobs = await queue.claim(destination, 100, LEASE * 10)
        if not jobs and out:
            break
        out += jobs
    return out


async def test_a_claim_hands_out_only_the_head_of_each_lane(queue: Queue) -> None:
    q = await ordered(queue)
    await q.append([user_event("u:a", n) for n in range(3)] + [user_event("u:b", n) for n in range(2)])
    jobs = await claim_within(q, DEST)
    assert sorted(j.message_id.split("-")[:2] for j in jobs) == [["u:a", "0"], ["u:b", "0"]]
    assert {j.lane for j in jobs} == {"u:a", "u:b"}
    assert await q.claim(DEST, 10, LEASE) == []  # the heads are leased; the rest wait behind them


async def test_acking_the_head_lets_the_next_of_its_lane_go_in_order(queue: Queue) -> None:
    q = await ordered(queue)
    events = [user_event("u:a", n) for n in range(4)]
    await q.append(events)
    seen = []
    for _ in range(4):
        [head] = await claim_within(q, DEST)
        seen.append(head.message_id)
        await q.ack(head)
    assert seen == [e.message_id for e in events]
    assert await q.depth(DEST) == 0


async def test_a_retried_head_blocks_only_its_own_lane(queue: Queue) -> None:
    q = await ordered(queue)
    await q.append([user_event("u:slow", 0), user_event("u:slow", 1), user_event("u:fast", 0), user_event("u:fast", 1)])
    first = await claim_within(q, DEST)
    slow = next(j for j in first if j.lane == "u:slow")
    fast = next(j for j in first if j.lane == "u:fast")
    await q.retry(slow, time.time() + 60)  # the slow user's head waits a minute
    await q.ack(fast)
    [after] = await claim_within(q, DEST)
    assert after.lane == "u:fast" and after.message_id.startswith("u:fast-1")
    assert await q.claim(DEST, 10, LEASE) == []  # u:slow-1 waits behind its retrying head
    [blocked] = await q.blocked_lanes(DEST, 10)
    assert (blocked.lane, blocked.events, blocked.head_message_id) == ("u:slow", 2, slow.message_id)
    assert blocked.head_attempts == 1 and blocked.next_attempt_at is not None


async def test_a_dead_lettered_head_lets_its_lane_move_on(queue: Queue) -> None:
    q = await ordered(queue)
    events = [user_event("u:a", n) for n in range(2)]
    await q.append(events)
    [head] = await claim_within(q, DEST)
    await q.dead_letter(head, "failed", "gave up")
    [second] = await claim_within(q, DEST)
    assert second.message_id == events[1].message_id


async def test_postponing_the_head_keeps_it_the_head(queue: Queue) -> None:
    q = await ordered(queue)
    events = [user_event("u:a", n) for n in range(2)]
    await q.append(events)
    [head] = await claim_within(q, DEST)
    await q.postpone(head, time.time())
    [again] = await claim_within(q, DEST)
    assert again.message_id == events[0].message_id


async def test_other_destinations_of_the_same_events_keep_no_order(queue: Queue) -> None:
    q = await ordered(queue)
    await q.append([user_event("u:a", n, DEST, "plain") for n in range(3)])
    assert len(await claim_within(q, "plain")) == 3
    assert len(await claim_within(q, DEST)) == 1


async def test_unordering_a_destination_releases_its_waiting_jobs(queue: Queue) -> None:
    q = await ordered(queue)
    await q.append([user_event("u:a", n) for n in range(3)])
    assert len(await claim_within(q, DEST)) == 1
    assert await q.claim(DEST, 10, LEASE) == []  # met behind the head: blocked
    await q.order_lanes(())
    assert len(await claim_within(q, DEST)) == 2


async def test_order_survives_a_restart_with_the_head_in_flight(durable_queues: Queues) -> None:
    q = await ordered(await durable_queues.open())
    events = [user_event("u:a", n) for n in range(3)]
    await q.append(events)
    await claim_within(q, DEST, lease=DEADLINE)  # the head, in flight when the process stops
    assert await q.claim(DEST, 10, LEASE) == []
    await durable_queues.close(q)

    q = await ordered(await durable_queues.open())
    seen = []
    for _ in range(3):
        [job] = await claim_within(q, DEST)
        seen.append(job.message_id)
        await q.ack(job)
    assert seen == [e.message_id for e in events]  # the head again first, then the rest in order


@pytest.mark.parametrize("lanes", [50])
async def test_many_lanes_are_claimed_together(queue: Queue, lanes: int) -> None:
    q = await ordered(queue)
    await q.append([user_event(f"u:{i}", n) for n in range(3) for i in range(lanes)])
    heads = await drain(q)
    assert sorted(j.lane or "" for j in heads) == sorted(f"u:{i}" for i in range(lanes))


async def test_a_redriven_event_goes_back_into_its_lane(queue: Queue) -> None:
    q = await ordered(queue)
    first, second = user_event("u:a", 0), user_event("u:a", 1)
    await q.append([first, second])
    [head] = await claim_within(q, DEST)
    await q.dead_letter(head, "failed", "gave up")
    [job] = await claim_within(q, DEST)
    await q.ack(job)
    assert await q.redrive(DEST) == 1
    later = user_event("u:a", 2)
    await q.append([later])
    [again] = await claim_within(q, DEST)
    assert again.message_id == first.message_id and again.lane == "u:a"
    assert await q.claim(DEST, 10, LEASE) == []  # the later event waits behind the re-driven one
    await q.ack(again)
    [last] = await claim_within(q, DEST)
    assert last.message_id == later.message_id
