"""Per-user ordering end to end (``ordering: user``), on the SQLite queue: eventrelay delivering to
the local Lambda runtime, whose handler records the order events reach it.

- 50 users x 40 events, the handler failing at random for 5 users: every user's events reach the
  handler in receipt order (a repeat is allowed, an inversion is not), and the users without
  failures finish no later than without ordering + 20%.
- A head that always fails holds its lane back for its own attempt cap only, then goes to the dead
  letter and the lane moves on; meanwhile the admin API says how many events the lane holds.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import arrivals, config, first_arrivals, flow_stack, user_events

USERS, PER_USER = 50, 40
FAILING = {f"user{u}" for u in range(5)}
SLACK = 1.2  # users without failures: at most 20% slower than without ordering
DEADLINE = 120.0
FAST_RETRY = {"backoff_base": "50ms", "backoff_cap": "200ms"}


def finish(seen: list[dict[str, Any]], started: float, users: set[str]) -> float:
    """Seconds from the start until the last event of ``users`` arrived."""
    return max(a["at"] for a in seen if a["user"] in users) - started


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_each_users_events_arrive_in_receipt_order_and_healthy_users_are_not_slowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same events go to two destinations at once, one ordered and one not, each with its own
    # function: both run under the same load, so their finish times compare fairly.
    monkeypatch.setenv("FLOW_FAILING_USERS", ",".join(sorted(FAILING)))
    cfg = config(
        tmp_path,
        functions={
            "ordered-fn": {"handler": "ordering.record", "concurrency": 8},
            "unordered-fn": {"handler": "ordering.record", "concurrency": 8},
        },
        destinations=[
            {"name": "ordered", "lambda": "ordered-fn", "ordering": "user", "delivery": FAST_RETRY},
            {"name": "unordered", "lambda": "unordered-fn", "delivery": FAST_RETRY},
        ],
    )
    async with flow_stack(cfg, tmp_path, monkeypatch) as flow:
        started = time.time()
        await flow.send(user_events(USERS, PER_USER))
        total = USERS * PER_USER
        await flow.wait(lambda: flow.delivered("ordered") == total, DEADLINE, "every event to ordered")
        await flow.wait(lambda: flow.delivered("unordered") == total, DEADLINE, "every event to unordered")
    seen = arrivals(tmp_path)
    ordered = [a for a in seen if a["fn"] == "ordered-fn"]
    unordered = [a for a in seen if a["fn"] == "unordered-fn"]

    order = first_arrivals(ordered)
    assert len(order) == USERS
    for user, numbers in order.items():
        assert numbers == list(range(PER_USER)), f"{user} received {numbers}"
    inverted = [u for u, numbers in first_arrivals(unordered).items() if numbers != sorted(numbers)]
    assert inverted, "without ordering some user's events should arrive out of order (the test proves nothing)"

    healthy = {f"user{u}" for u in range(USERS)} - FAILING
    without, with_ = finish(unordered, started, healthy), finish(ordered, started, healthy)
    print(f"users without failures finish: {without:.2f} s without ordering, {with_:.2f} s with")
    assert with_ <= without * SLACK


async def test_a_head_that_always_fails_holds_its_lane_for_its_attempt_cap_then_the_lane_moves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(
        tmp_path,
        functions={"poison-fn": {"handler": "ordering.poison", "concurrency": 2}},
        destinations=[
            {
                "name": "users",
                "lambda": "poison-fn",
                "ordering": "user",
                "delivery": {"backoff_base": "400ms", "backoff_cap": "400ms", "max_attempts": 4},
            }
        ],
    )
    events = [
        {"type": "track", "event": "Step", "userId": "stuck", "properties": {"n": n, "poison": n == 0}}
        for n in range(5)
    ] + [{"type": "track", "event": "Step", "userId": "free", "properties": {"n": n}} for n in range(5)]
    async with flow_stack(cfg, tmp_path, monkeypatch) as flow:
        await flow.send(events)
        blocked: list[dict[str, Any]] = []
        deadline = time.monotonic() + DEADLINE
        while not blocked:  # while the poison event is retried, its lane holds all five
            assert time.monotonic() < deadline, "the blocked lane never showed"
            listed = await flow.api("/api/v1/destinations")
            blocked = listed["destinations"][0]["lanes"]["blocked"]
            await asyncio.sleep(0.05)
        stats = await flow.api("/api/v1/destinations/users/stats")
        await flow.wait(lambda: flow.delivered("users") == 9, DEADLINE, "the nine other events delivered")
        failed = await flow.api("/api/v1/deliveries?destination=users&status=failed")
    (lane,) = blocked
    assert (lane["user"], lane["key"], lane["events"]) == ("stuck", "userId", 5)
    assert lane["head_category"] == "execution_error" and lane["head_attempts"] >= 1
    assert stats["ordering"] == "user" and stats["lanes"]["blocked"][0]["user"] == "stuck"
    [dead] = failed["deliveries"]
    assert dead["attempts"] == 4 and dead["status"] == "failed"
    order = first_arrivals(arrivals(tmp_path))
    assert order == {"free": [0, 1, 2, 3, 4], "stuck": [1, 2, 3, 4]}


async def test_an_event_of_an_ordered_destination_is_claimed_at_once_on_an_idle_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(
        tmp_path,
        functions={"record-fn": {"handler": "ordering.record", "concurrency": 1}},
        destinations=[{"name": "users", "lambda": "record-fn", "ordering": "user"}],
    )
    async with flow_stack(cfg, tmp_path, monkeypatch) as flow:
        await flow.send(user_events(1, 1, prefix="warm-"))  # the runtime process starts
        await flow.wait(lambda: flow.delivered("users") == 1, DEADLINE, "the first event")
        waits = []
        for n in range(5):
            await asyncio.sleep(1.0)  # idle: the worker's polling has backed off to its slowest (0.5 s)
            sent = time.time()
            await flow.send(user_events(1, 1, prefix=f"idle{n}-"))
            await flow.wait(lambda: flow.delivered("users") == n + 2, DEADLINE, f"idle event {n}")  # noqa: B023
            waits.append(next(a["at"] for a in arrivals(tmp_path) if a["id"].startswith(f"idle{n}-")) - sent)
    # woken by the append (a few ms), not found by the next idle poll (up to 0.5 s, ~0.25 s typical)
    assert sorted(waits)[len(waits) // 2] < 0.08, waits
