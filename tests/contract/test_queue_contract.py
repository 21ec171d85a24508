"""The queue contract: what ingest and delivery rely on, checked against every backend."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import pytest

from eventrelay.core.errors import QueueFull
from eventrelay.core.records import Accepted, Job
from eventrelay.queue.base import Queue
from tests.contract.conftest import Queues

LEASE = 0.3  # short leases keep the suite fast
DEADLINE = 10.0  # generous: the machine is shared and loaded


def event(
    *destinations: str, message_id: str | None = None, body: bytes | None = None, call_type: str = "track"
) -> Accepted:
    mid = message_id or str(uuid.uuid4())
    return Accepted(
        message_id=mid,
        source="web",
        call_type=call_type,
        received_at=1_700_000_000.25,
        body=body
        if body is not None
        else b'{"type":"track","event":"Order Completed","messageId":"%s"}' % mid.encode(),
        destinations=destinations or ("lambda",),
    )


async def claim_within(queue: Queue, destination: str, *, limit: int = 10, lease: float = LEASE) -> list[Job]:
    """Claim until something is due or the deadline passes."""
    deadline = time.monotonic() + DEADLINE
    while True:
        jobs = await queue.claim(destination, limit, lease)
        if jobs or time.monotonic() > deadline:
            return jobs
        await asyncio.sleep(0.02)


async def test_append_then_claim_returns_the_job_with_body_intact(queue: Queue) -> None:
    body = '{"type":"identify","traits":{"name":"Zoë ✓"},"blob":"%s"}' % ("x" * 20_000)
    item = event("lambda", body=body.encode(), call_type="identify")

    assert await queue.append([item]) == [True]
    [job] = await queue.claim("lambda", 10, LEASE)

    assert (job.message_id, job.destination, job.source, job.call_type) == (
        item.message_id,
        "lambda",
        "web",
        "identify",
    )
    assert job.body == item.body
    assert job.received_at == item.received_at
    assert (job.attempts, job.first_attempt_at) == (0, None)


async def test_same_message_id_twice_is_stored_once(queue: Queue) -> None:
    item = event("a", "b")

    assert await queue.append([item]) == [True]
    assert await queue.append([item]) == [False]

    assert len(await queue.claim("a", 10, LEASE)) == 1
    assert len(await queue.claim("b", 10, LEASE)) == 1


async def test_duplicate_within_one_append_is_stored_once(queue: Queue) -> None:
    first, other = event(), event()

    assert await queue.append([first, other, first]) == [True, True, False]

    assert await queue.depth() == 2


async def test_duplicate_after_the_dedup_window_is_stored_again(queues: Queues) -> None:
    queue = await queues.open(dedup_window=0.2)
    item = event()
    assert await queue.append([item]) == [True]
    await asyncio.sleep(0.3)

    assert await queue.append([item]) == [True]
    assert await queue.depth() == 2


async def test_one_job_per_destination(queue: Queue) -> None:
    item = event("a", "b", "c")

    await queue.append([item])

    for destination in ("a", "b", "c"):
        [job] = await queue.claim(destination, 10, LEASE)
        assert job.message_id == item.message_id
    assert await queue.claim("d", 10, LEASE) == []


async def test_event_routed_nowhere_is_accepted_without_work(queue: Queue) -> None:
    item = Accepted("m-nowhere", "web", "track", 1.0, b"{}", ())

    assert await queue.append([item]) == [True]
    assert await queue.append([item]) == [False]
    assert await queue.depth() == 0


async def test_append_of_nothing_returns_nothing(queue: Queue) -> None:
    assert await queue.append([]) == []


async def test_claim_respects_limit(queue: Queue) -> None:
    await queue.append([event() for _ in range(5)])

    first = await queue.claim("lambda", 3, LEASE)
    rest = await queue.claim("lambda", 3, LEASE)

    assert (len(first), len(rest)) == (3, 2)
    assert not {j.message_id for j in first} & {j.message_id for j in rest}


async def test_claim_returns_only_that_destinations_jobs(queue: Queue) -> None:
    await queue.append([event("a"), event("b"), event("a", "b")])

    jobs = await queue.claim("a", 10, LEASE)

    assert [j.destination for j in jobs] == ["a", "a"]


async def test_claimed_job_is_hidden_until_its_lease_lapses(queue: Queue) -> None:
    item = event()
    await queue.append([item])
    started = time.monotonic()
    [_job] = await queue.claim("lambda", 10, LEASE)

    again = await queue.claim("lambda", 10, LEASE)
    if time.monotonic() - started < LEASE:
        assert again == []

    [back] = await claim_within(queue, "lambda")
    assert back.message_id == item.message_id
    assert time.monotonic() - started >= LEASE * 0.9


async def test_extend_keeps_a_long_attempt_hidden(queue: Queue) -> None:
    await queue.append([event()])
    [job] = await queue.claim("lambda", 10, LEASE)

    await queue.extend(job, 5.0)
    await asyncio.sleep(LEASE + 0.1)

    assert await queue.claim("lambda", 10, LEASE) == []


async def test_ack_removes_the_job(queue: Queue) -> None:
    await queue.append([event("a", "b")])
    [job] = await queue.claim("a", 10, LEASE)

    await queue.ack(job)
    await asyncio.sleep(LEASE + 0.1)

    assert await queue.claim("a", 10, LEASE) == []
    assert await queue.depth("a") == 0
    assert len(await queue.claim("b", 10, LEASE)) == 1  # the other destination's job is untouched


async def test_retry_is_due_at_its_time_with_one_more_attempt(queue: Queue) -> None:
    item = event()
    await queue.append([item])
    [job] = await queue.claim("lambda", 10, 30.0)
    delay = 0.4

    retried_at = time.monotonic()
    await queue.retry(job, time.time() + delay)

    early = await queue.claim("lambda", 10, LEASE)
    if time.monotonic() - retried_at < delay:
        assert early == []
    [again] = await claim_within(queue, "lambda")
    assert again.message_id == item.message_id
    assert again.attempts == 1
    assert again.first_attempt_at is not None
    assert time.monotonic() - retried_at >= delay * 0.9


async def test_a_retry_keeps_the_jobs_batch_key_until_a_retry_without_one_or_a_redrive(queue: Queue) -> None:
    await queue.append([event()])
    [job] = await queue.claim("lambda", 10, LEASE)
    assert job.batch is None
    await queue.retry(replace(job, batch="b1/3/1"), time.time())  # retried as part of a whole batch

    [keyed] = await claim_within(queue, "lambda")
    assert (keyed.batch, keyed.attempts) == ("b1/3/1", 1)
    await queue.retry(replace(keyed, batch=None), time.time())  # then on its own
    [alone] = await claim_within(queue, "lambda")
    assert (alone.batch, alone.attempts) == (None, 2)

    await queue.retry(replace(alone, batch="b2/2/0"), time.time())
    [again] = await claim_within(queue, "lambda")
    await queue.dead_letter(again, "failed", "gave up")
    assert await queue.redrive("lambda") == 1
    [fresh] = await claim_within(queue, "lambda")
    assert (fresh.batch, fresh.attempts) == (None, 0)


async def test_retry_keeps_the_first_attempt_time(queue: Queue) -> None:
    await queue.append([event()])
    [job] = await queue.claim("lambda", 10, LEASE)
    await queue.retry(job, time.time())
    [second] = await claim_within(queue, "lambda")
    await queue.retry(second, time.time())

    [third] = await claim_within(queue, "lambda")

    assert third.attempts == 2
    assert third.first_attempt_at == second.first_attempt_at


async def test_dead_letter_is_kept_out_and_redrive_brings_it_back_fresh(queue: Queue) -> None:
    item = event()
    await queue.append([item])
    [job] = await queue.claim("lambda", 10, LEASE)
    await queue.retry(job, time.time())
    [job] = await claim_within(queue, "lambda")

    await queue.dead_letter(job, "failed", "retry window exhausted")
    await asyncio.sleep(LEASE + 0.1)

    assert await queue.claim("lambda", 10, LEASE) == []
    assert await queue.depth("lambda") == 0
    assert await queue.redrive("lambda") == 1
    [back] = await queue.claim("lambda", 10, LEASE)
    assert back.message_id == item.message_id
    assert back.body == item.body
    assert (back.attempts, back.first_attempt_at) == (0, None)


async def test_discarded_jobs_are_kept_for_redrive_too(queue: Queue) -> None:
    await queue.append([event()])
    [job] = await queue.claim("lambda", 10, LEASE)

    await queue.dead_letter(job, "discarded", "ResourceNotFoundException: function not found")

    assert await queue.redrive("lambda") == 1
    assert len(await queue.claim("lambda", 10, LEASE)) == 1


async def test_redrive_by_id_moves_only_those(queue: Queue) -> None:
    items = [event("a", "b") for _ in range(3)]
    await queue.append(items)
    for destination in ("a", "b"):
        for job in await queue.claim(destination, 10, LEASE):
            await queue.dead_letter(job, "failed", "boom")

    moved = await queue.redrive("a", [items[0].message_id, items[2].message_id, "unknown-id"])

    assert moved == 2
    jobs = await queue.claim("a", 10, LEASE)
    assert sorted(j.message_id for j in jobs) == sorted([items[0].message_id, items[2].message_id])
    assert await queue.claim("b", 10, LEASE) == []  # same ids, other destination: still dead
    assert await queue.redrive("a") == 1  # the one left behind
    assert await queue.redrive("a") == 0


async def test_depth_counts_waiting_jobs_per_destination(queue: Queue) -> None:
    await queue.append([event("a"), event("a"), event("a", "b")])
    assert (await queue.depth(), await queue.depth("a"), await queue.depth("b")) == (4, 3, 1)

    leased = await queue.claim("a", 2, LEASE)
    assert await queue.depth("a") == 3  # leased jobs still wait for their outcome

    await queue.ack(leased[0])
    await queue.dead_letter(leased[1], "failed", "boom")

    assert (await queue.depth(), await queue.depth("a"), await queue.depth("b")) == (2, 1, 1)
    assert await queue.depth("unknown") == 0


async def test_queue_full_over_max_events(queues: Queues) -> None:
    queue = await queues.open(max_events=5)
    await queue.append([event("a", "b"), event("a", "b")])

    with pytest.raises(QueueFull, match=r"storage\.max_events") as full:
        await queue.append([event("a", "b")])

    assert full.value.retry_after > 0
    assert await queue.depth() == 4
    assert await queue.append([event("a")]) == [True]  # exactly at the bound is fine


async def test_room_returns_after_acks(queues: Queues) -> None:
    queue = await queues.open(max_events=2)
    await queue.append([event(), event()])
    with pytest.raises(QueueFull):
        await queue.append([event()])

    for job in await queue.claim("lambda", 10, LEASE):
        await queue.ack(job)

    assert await queue.append([event()]) == [True]


async def test_close_and_reopen_keeps_unsettled_jobs(durable_queues: Queues) -> None:
    queue = await durable_queues.open()
    done, leased, retried, dead, waiting = items = [event() for _ in range(5)]
    await queue.append(items)
    jobs = {j.message_id: j for j in await queue.claim("lambda", 4, 1.0)}
    assert waiting.message_id not in jobs and leased.message_id in jobs
    await queue.ack(jobs[done.message_id])
    await queue.retry(jobs[retried.message_id], time.time())
    await queue.dead_letter(jobs[dead.message_id], "failed", "boom")

    await durable_queues.close(queue)
    queue = await durable_queues.open()

    assert await queue.append([done]) == [False]  # the dedup memory survives too
    assert await queue.depth("lambda") == 3
    found: dict[str, Job] = {}
    deadline = time.monotonic() + DEADLINE
    while len(found) < 3 and time.monotonic() < deadline:  # the leased one returns when its lease lapses
        found.update((j.message_id, j) for j in await queue.claim("lambda", 10, 60.0))
        await asyncio.sleep(0.05)
    assert set(found) == {leased.message_id, retried.message_id, waiting.message_id}
    assert found[retried.message_id].attempts == 1
    assert found[waiting.message_id].body == waiting.body
    assert await queue.redrive("lambda") == 1


async def test_a_claim_of_many_returns_each_body_and_time_exactly(queue: Queue) -> None:
    bodies = [bytes(range(256)), b"", b"\x00\x00", "Zoë ✓".encode(), b"\xff\xfe not utf-8", b"{}" * 5_000]
    items = [
        Accepted(f"m-exact-{i}", "web", "track", 1_795_692_269.4529798 + i / 7, body, ("lambda",))
        for i, body in enumerate(bodies)
    ]
    await queue.append(items)

    jobs = await queue.claim("lambda", 100, LEASE)

    assert {j.message_id: (j.body, j.received_at) for j in jobs} == {
        i.message_id: (i.body, i.received_at) for i in items
    }


async def test_first_attempt_time_is_kept_exactly(queue: Queue) -> None:
    await queue.append([event()])
    [job] = await queue.claim("lambda", 10, LEASE)
    before = time.time()
    await queue.retry(job, before)

    [again] = await claim_within(queue, "lambda")

    assert again.first_attempt_at is not None and before <= again.first_attempt_at <= time.time()
    await queue.retry(again, time.time())
    [third] = await claim_within(queue, "lambda")
    assert third.first_attempt_at == again.first_attempt_at


async def test_a_redriven_job_gets_a_fresh_window_and_attempt_count(queue: Queue) -> None:
    item = event()  # received long ago (2023): its original retry window is long gone
    await queue.append([item])
    [job] = await queue.claim("lambda", 10, LEASE)
    await queue.retry(job, time.time())
    [job] = await claim_within(queue, "lambda")
    assert (job.attempts, job.redriven_at) == (1, None)  # never redriven: the window runs from receipt
    await queue.dead_letter(job, "failed", "retry window exhausted")

    before = time.time()
    assert await queue.redrive("lambda") == 1
    after = time.time()
    [back] = await claim_within(queue, "lambda")

    assert (back.attempts, back.first_attempt_at) == (0, None)
    assert back.redriven_at is not None and before - 0.001 <= back.redriven_at <= after + 0.001
    assert back.received_at == item.received_at  # the event's receipt is not rewritten

    await queue.retry(back, time.time())  # the fresh window holds through the retries after it
    [again] = await claim_within(queue, "lambda")
    assert (again.attempts, again.redriven_at, again.received_at) == (1, back.redriven_at, item.received_at)

    await queue.dead_letter(again, "failed", "boom")  # a second redrive starts the window again
    await asyncio.sleep(0.01)
    assert await queue.redrive("lambda", [item.message_id]) == 1
    [third] = await claim_within(queue, "lambda")
    assert third.attempts == 0
    assert third.redriven_at is not None and back.redriven_at < third.redriven_at <= time.time()


async def test_redrive_makes_a_job_waiting_for_a_retry_due_now_with_a_fresh_window(queue: Queue) -> None:
    waiting, other, fresh = event(), event(), event()
    await queue.append([waiting, other])
    for job in await queue.claim("lambda", 10, LEASE):
        await queue.retry(job, time.time() + 3600)  # the backoff would wait an hour
    await queue.append([fresh])  # never attempted: due anyway, not re-driven
    assert [j.message_id for j in await claim_within(queue, "lambda")] == [fresh.message_id]

    before = time.time()
    assert await queue.redrive("lambda", [waiting.message_id, "unknown-id"]) == 1
    [back] = await claim_within(queue, "lambda")

    assert back.message_id == waiting.message_id and back.body == waiting.body
    assert (back.attempts, back.first_attempt_at, back.received_at) == (0, None, waiting.received_at)
    assert back.redriven_at is not None and before - 0.001 <= back.redriven_at <= time.time()
    await queue.ack(back)
    assert await queue.redrive("lambda", [waiting.message_id]) == 0  # delivered: nothing waits
    assert await queue.depth("lambda") == 2  # the other one still waits, the fresh one is claimed

    assert await queue.redrive("lambda") == 1  # everything: the other one
    [last] = await claim_within(queue, "lambda")
    assert (last.message_id, last.attempts) == (other.message_id, 0)
    await queue.ack(last)
    await asyncio.sleep(LEASE + 0.1)  # the fresh job's lease lapses: it is due, never attempted
    assert [j.message_id for j in await claim_within(queue, "lambda")] == [fresh.message_id]
    assert await queue.redrive("lambda") == 0  # a lapsed lease is not an attempt; nothing waits
