"""The adaptive in-flight limit of one function (``delivery/aimd.py``): pure logic."""

from __future__ import annotations

from eventrelay.delivery.aimd import CUT, FLOOR_BACKOFF_MIN, AimdLimit, Signal

NOW = 1_800_000_000.0


def run_round(limit: AimdLimit, signal: Signal, count: int | None = None, now: float = NOW) -> None:
    """``count`` attempts (default: a full limit) start together and end with ``signal``."""
    epochs = [limit.acquire() for _ in range(limit.current if count is None else count)]
    for epoch in epochs:
        limit.release(epoch, signal, now)


def succeed(limit: AimdLimit, rounds: int) -> None:
    """Attempts succeed one after another with the limit kept full (each ended attempt is
    replaced at once), for ``rounds`` rounds of ``limit.current`` attempts each."""
    pending: list[int] = []
    for _ in range(rounds):
        for _ in range(limit.current):
            while limit.in_flight < limit.current:
                pending.append(limit.acquire())
            limit.release(pending.pop(0), Signal.ACCEPTED, NOW)
    for epoch in pending:
        limit.release(epoch, Signal.NONE, NOW)


def test_starts_at_the_configured_concurrency() -> None:
    limit = AimdLimit(64)
    assert (limit.current, limit.room(NOW), limit.ceiling) == (64, 64, 64)


def test_a_round_of_throttles_cuts_once() -> None:
    limit = AimdLimit(64)
    run_round(limit, Signal.THROTTLED)
    assert limit.current == int(64 * CUT)


def test_cuts_down_to_the_floor_and_never_below() -> None:
    limit = AimdLimit(64)
    for _ in range(40):
        run_round(limit, Signal.THROTTLED)
    assert limit.current == 1


def test_throttles_at_the_floor_back_off_so_the_function_is_not_hammered() -> None:
    limit = AimdLimit(1)
    run_round(limit, Signal.THROTTLED)
    assert limit.room(NOW) == 0 and limit.room(NOW + FLOOR_BACKOFF_MIN) == 1
    run_round(limit, Signal.THROTTLED, now=NOW + 1)
    assert limit.room(NOW + 1 + FLOOR_BACKOFF_MIN) == 0  # doubled
    run_round(limit, Signal.ACCEPTED, now=NOW + 2)
    run_round(limit, Signal.THROTTLED, now=NOW + 3)
    assert limit.room(NOW + 3 + FLOOR_BACKOFF_MIN) == 1  # reset by the accepted attempt


def test_grows_by_about_one_per_round_of_successes_up_to_the_ceiling() -> None:
    limit = AimdLimit(64)
    run_round(limit, Signal.THROTTLED)
    for _ in range(30):
        run_round(limit, Signal.THROTTLED)
    assert limit.current == 1
    limit.last_throttle = None  # far from any throttle point: the fast growth
    succeed(limit, 10)
    assert 9 <= limit.current <= 12
    succeed(limit, 100)
    assert limit.current == 64


def test_grows_slowly_near_the_last_throttle_point() -> None:
    limit = AimdLimit(64)
    limit.limit = 5.0
    run_round(limit, Signal.THROTTLED)  # throttled at 5: cut to 3.75
    succeed(limit, 1)
    assert limit.current == 4  # back up fast to one below the throttle point
    succeed(limit, 5)
    assert limit.current == 4  # then probing slowly: 0.1 per round
    succeed(limit, 6)
    assert limit.current == 5


def test_does_not_grow_while_the_limit_is_not_in_use() -> None:
    limit = AimdLimit(64)
    run_round(limit, Signal.THROTTLED)
    before = limit.limit
    for _ in range(100):
        run_round(limit, Signal.ACCEPTED, count=3)
    assert limit.limit == before


def test_timeouts_and_errors_say_nothing_about_capacity() -> None:
    limit = AimdLimit(16)
    run_round(limit, Signal.NONE)
    assert limit.limit == 16.0


def test_retry_after_holds_every_attempt_back_until_it_passes() -> None:
    limit = AimdLimit(8)
    epoch = limit.acquire()
    limit.release(epoch, Signal.THROTTLED, NOW, retry_after=2.0)
    assert limit.room(NOW + 1.99) == 0
    assert limit.room(NOW + 2.0) == limit.current


def test_reserved_concurrency_sets_and_caps_the_limit() -> None:
    limit = AimdLimit(64)
    limit.cap(4)
    assert (limit.current, limit.ceiling) == (4, 4)
    succeed(limit, 100)
    assert limit.current == 4
    limit.cap(200)  # raised beyond the configured concurrency: the configured one is the ceiling
    assert limit.ceiling == 64
    limit.cap(None)
    assert limit.ceiling == 64
