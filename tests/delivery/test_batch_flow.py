"""Flow control and per-user ordering with a batching destination (over the in-memory queue): a
batch invoke holds one place of its function's adaptive limit, a throttled batch does not use up
the attempt cap, and a batch carries at most the head event of each user lane, in order."""

from __future__ import annotations

import time

from eventrelay.core.outcome import Category, Verdict
from eventrelay.core.records import Accepted

from .conftest import Harness, append, delivered, eventually, failing
from .test_batch_worker import Answer, FakeBatchDestination, ids, limits, start


async def test_batch_invokes_in_flight_stay_within_the_concurrency(harness: Harness) -> None:
    dest = FakeBatchDestination("b-bound", limits(max_events=5, max_wait=0.01), delay=0.05)
    await append(harness.queue, ("b-bound",), *ids(200))
    await start(harness, dest, concurrency=3)
    await eventually(lambda: len(dest.sent()) == 200, within=20)
    assert dest.max_in_flight <= 3


async def test_a_throttled_batch_is_retried_without_using_up_the_attempt_cap(harness: Harness) -> None:
    def respond(batch: list[str], n: int) -> Answer:
        if n <= 4:
            return failing(Category.THROTTLED, Verdict.RETRY, status_code=429), set()
        return delivered(), set()

    dest = FakeBatchDestination("b-429", limits(max_events=10, max_wait=0.01), respond=respond)
    await append(harness.queue, ("b-429",), *ids(5))
    await start(harness, dest, max_attempts=1, backoff_base=0.01, backoff_cap=0.02)
    await eventually(lambda: set(harness.statuses("b-429").values()) == {"delivered"}, within=20)
    assert len(dest.invokes) == 5 and all(len(i) == 5 for i in dest.invokes)  # retried together


async def test_a_batch_carries_at_most_the_head_of_each_user_lane(harness: Harness) -> None:
    await harness.queue.order_lanes(["b-lanes"])
    users, per_user = 3, 6
    items = []
    for n in range(per_user):
        for u in range(users):
            body = b'{"type":"track","event":"E","userId":"user%d","messageId":"u%d-%d"}' % (u, u, n)
            items.append(Accepted(f"u{u}-{n}", "web", "track", time.time(), body, ("b-lanes",), f"u:user{u}"))
    await harness.queue.append(items)
    dest = FakeBatchDestination("b-lanes", limits(max_events=10, max_wait=0.01))
    await start(harness, dest)
    await eventually(lambda: len(dest.sent()) == users * per_user, within=20)
    for invoke in dest.invokes:
        owners = [m.split("-")[0] for m in invoke]
        assert len(owners) == len(set(owners)), f"two events of one user in one batch: {invoke}"
    for u in range(users):
        sent = [int(m.split("-")[1]) for m in dest.sent() if m.startswith(f"u{u}-")]
        assert sent == list(range(per_user))
