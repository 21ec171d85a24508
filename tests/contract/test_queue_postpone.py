"""The queue contract, ``postpone``: a throttled job is due again later without counting the attempt."""

from __future__ import annotations

import time

from eventrelay.queue.base import Calls, Queue
from tests.contract.test_queue_contract import LEASE, claim_within, event


async def test_postpone_is_due_at_its_time_with_the_attempts_unchanged(queue: Queue) -> None:
    item = event()
    await queue.append([item])
    [job] = await queue.claim("lambda", 10, LEASE)
    await queue.retry(job, time.time())  # one counted attempt
    [counted] = await claim_within(queue, "lambda")
    delay = 0.4

    postponed_at = time.monotonic()
    await queue.postpone(counted, time.time() + delay)

    early = await queue.claim("lambda", 10, LEASE)
    if time.monotonic() - postponed_at < delay:
        assert early == []
    [again] = await claim_within(queue, "lambda")
    assert again.message_id == item.message_id
    assert again.attempts == 1  # the postponed attempt did not count
    assert time.monotonic() - postponed_at >= delay * 0.9


async def test_postpone_through_the_settle_calls(queue: Queue) -> None:
    await queue.append([event()])
    [job] = await queue.claim("lambda", 10, LEASE)
    await Calls(queue).postpone(job, time.time())
    [again] = await claim_within(queue, "lambda")
    assert again.attempts == 0
    assert await queue.depth("lambda") == 1
