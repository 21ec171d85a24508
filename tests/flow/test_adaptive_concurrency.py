"""Adaptive concurrency end to end: eventrelay delivering to the local Lambda runtime, whose
functions enforce ``reserved_concurrency`` and answer 429 ``TooManyRequestsException`` as AWS does.

- A function with reserved concurrency 4 and a 50 ms handler can take 4 / 0.05 s = 80 events/s.
  Without the optional grant (``lambda:GetFunctionConcurrency``) eventrelay finds that by
  throttles, from the configured 64: after the first second at most 5% of the invocations are
  throttled, and at least 0.8 x 80 events/s are delivered.
- With the grant it starts at the function's reserved concurrency: no throttle at all.
- Retry-After on a 429: no attempt to that function starts before it has passed.
- A function without reserved concurrency runs at the configured concurrency, never less.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Flow, config, flow_stack

EVENTS = 2_000
RESERVED = 4
HANDLER_SECONDS = 0.05
CAPACITY = RESERVED / HANDLER_SECONDS  # events/s the function can take
WARM_UP = 1.0  # seconds at the start not counted: the limit comes down from 64, runtimes start
MAX_THROTTLED_SHARE = 0.05
MIN_THROUGHPUT_SHARE = 0.8
DEADLINE = 120.0  # seconds for everything to be delivered on a loaded 2-core machine


def events(count: int, prefix: str = "e") -> list[dict[str, object]]:
    return [
        {"type": "track", "event": "Clicked", "userId": f"u{n % 97}", "messageId": f"{prefix}{n}"} for n in range(count)
    ]


async def function_flow(flow: Flow, destination: str) -> dict[str, Any]:
    """The flow state (limit, in flight, ...) of the destination's one function, from the admin API."""
    listed = await flow.api("/api/v1/destinations")
    (fn,) = next(d["flow"] for d in listed["destinations"] if d["name"] == destination)
    return dict(fn)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_reserved_concurrency_is_found_by_throttles_with_few_throttles_and_most_of_the_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(
        tmp_path,
        functions={"reserved-fn": {"handler": "handlers.sleep50", "reserved_concurrency": RESERVED}},
        destinations=[{"name": "adaptive", "lambda": "reserved-fn"}],  # concurrency: the default 64
        role={"allow_get_concurrency": []},  # the optional grant is not given
    )
    async with flow_stack(cfg, tmp_path, monkeypatch) as flow:
        await flow.send(events(EVENTS))
        await flow.wait(lambda: flow.delivered("adaptive") == EVENTS, DEADLINE, f"{EVENTS} events delivered")
        listed = await flow.api("/api/v1/destinations")
        metrics = await flow.metrics()
        attempts = flow.attempts("adaptive")

    first = min(started for _, _, started, _ in attempts)
    last = max(finished for _, category, _, finished in attempts if category == "delivered")
    throughput = EVENTS / (last - first)
    later = [category for _, category, started, _ in attempts if started >= first + WARM_UP]
    throttled = later.count("throttled") / len(later)
    print(f"throughput {throughput:.1f}/s of {CAPACITY:.0f}/s; throttled after {WARM_UP:g} s: {throttled:.1%}")
    assert throttled <= MAX_THROTTLED_SHARE
    assert throughput >= MIN_THROUGHPUT_SHARE * CAPACITY
    assert {category for _, category, _, _ in attempts} <= {"delivered", "throttled"}
    (fn,) = listed["destinations"][0]["flow"]
    assert fn["function"] == "reserved-fn" and fn["configured"] == 64 and fn["reserved_concurrency"] is None
    assert 1 <= fn["limit"] <= RESERVED + 2  # came down from 64 to about the capacity
    assert f'eventrelay_concurrency_limit{{destination="adaptive",function="reserved-fn"}} {fn["limit"]}.0' in metrics


async def test_with_the_grant_delivery_starts_at_the_reserved_concurrency_and_is_never_throttled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(
        tmp_path,
        functions={"reserved-fn": {"handler": "handlers.sleep50", "reserved_concurrency": RESERVED}},
        destinations=[{"name": "known", "lambda": "reserved-fn"}],
    )
    async with flow_stack(cfg, tmp_path, monkeypatch) as flow:
        await flow.send(events(1, prefix="first"))  # the first job makes the worker read it
        deadline = time.monotonic() + DEADLINE
        while (fn := await function_flow(flow, "known"))["reserved_concurrency"] is None:
            assert time.monotonic() < deadline, "the reserved concurrency was never read"
            await asyncio.sleep(0.05)
        assert (fn["reserved_concurrency"], fn["limit"], fn["configured"]) == (RESERVED, RESERVED, 64)
        await flow.send(events(400))
        await flow.wait(lambda: flow.delivered("known") == 401, DEADLINE, "400 events delivered")
        attempts = flow.attempts("known")
    assert [c for _, c, _, _ in attempts].count("throttled") == 0
    assert len(attempts) == 401


async def test_retry_after_of_a_throttle_holds_every_attempt_to_that_function_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    retry_after = 0.5
    cfg = config(
        tmp_path,
        functions={
            "one-at-a-time": {
                "handler": "handlers.sleep200",
                "reserved_concurrency": 1,
                "throttle_retry_after": f"{retry_after}s",
            }
        },
        destinations=[{"name": "polite", "lambda": "one-at-a-time", "delivery": {"concurrency": 4}}],
        role={"allow_get_concurrency": []},
    )
    async with flow_stack(cfg, tmp_path, monkeypatch) as flow:
        await flow.send(events(8))
        await flow.wait(lambda: flow.delivered("polite") == 8, DEADLINE, "8 events delivered")
        attempts = flow.attempts("polite")
    throttles = [finished for _, category, _, finished in attempts if category == "throttled"]
    assert throttles, "the function's reserved concurrency of 1 was never exceeded"
    for answered in throttles:
        early = [m for m, _, started, _ in attempts if answered < started < answered + retry_after - 0.01]
        assert early == [], f"attempts started within Retry-After of the throttle answered at {answered}"


async def test_a_function_without_reserved_concurrency_runs_at_the_configured_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(
        tmp_path,
        functions={"open-fn": {"handler": "handlers.sleep300", "concurrency": 8}},
        destinations=[{"name": "open", "lambda": "open-fn", "delivery": {"concurrency": 8}}],
    )
    async with flow_stack(cfg, tmp_path, monkeypatch) as flow:
        await flow.send(events(32))
        seen: list[tuple[int, int]] = []
        while flow.delivered("open") < 32:
            fn = await function_flow(flow, "open")
            seen.append((fn["limit"], fn["in_flight"]))
            await asyncio.sleep(0.02)
        attempts = flow.attempts("open")
    assert {limit for limit, _ in seen} == {8}
    assert max(in_flight for _, in_flight in seen) == 8
    assert [c for _, c, _, _ in attempts] == ["delivered"] * 32
