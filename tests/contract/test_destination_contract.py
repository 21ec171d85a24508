"""The Destination contract: every destination type passes this suite.

``send(SendRequest, timeout)`` answers with an ``Outcome`` within the timeout and never raises
(error answers, dead endpoints, unknown call types, after ``close``); the outcome carries the
attempt's latency, as the destination measured it, and no secret.

To add a destination type, add a ``Harness`` to ``HARNESSES``: it builds a destination whose
endpoint works, answers with an error, is dead (nothing listens) or is slow, and lists the
secrets that must never appear in an Outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.destinations.aws_lambda.batching import BatchingAwsLambdaDestination
from eventrelay.destinations.aws_lambda.credentials import RoleCredentialCache
from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
from eventrelay.destinations.base import BatchDestination, BatchOutcome, CheckableDestination, Destination
from tests.destinations.lambda_doubles import (
    EXTERNAL_ID,
    IamUser,
    MotoServer,
    RecordingLambda,
    aws_error,
    fresh_session,
    moto_with_iam,
    settings,
)
from tests.support.awsenv import isolate_aws_env
from tests.support.process import free_port
from tests.support.send import request_for

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")
EVENT = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-1"}
TIMEOUT_TOLERANCE = 1.5  # seconds over the timeout a loaded 2-core machine may take to return


@dataclass
class Harness:
    """Builds destinations of one type in the four states the contract needs."""

    make: Callable[[str], Awaitable[Destination]]  # "working" | "failing" | "dead" | "slow"
    secrets: Callable[[], Awaitable[list[str]]]
    made: list[Destination] = field(default_factory=list)


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[MotoServer, IamUser]]:
    with moto_with_iam() as found:
        yield found


async def _aws_lambda(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    moto: tuple[MotoServer, IamUser],
    batch: dict[str, Any] | None = None,
) -> AsyncIterator[Harness]:
    server, user = moto
    lambdas = {kind: RecordingLambda() for kind in ("working", "failing", "slow")}
    for recorder in lambdas.values():
        await recorder.start()
    lambdas["failing"].default = aws_error(500, "ServiceException", "Lambda is having a bad day")

    async def slow(request: web.Request) -> web.StreamResponse:
        if request.headers.get("X-Amz-Invocation-Type") == "DryRun":
            return web.Response(status=204)  # make() checks the connection; only sends are slow
        await asyncio.sleep(3)
        return web.Response(status=200)

    lambdas["slow"].default = slow
    isolate_aws_env(monkeypatch, tmp_path, access_key=user.access_key, secret_key=user.secret_key, sts_url=server.url)
    cache = RoleCredentialCache()
    harness: Harness

    async def make(kind: str) -> Destination:
        url = lambdas[kind].url if kind in lambdas else f"http://127.0.0.1:{free_port()}"
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
        configured = settings(log_type="Tail", client_context={"app": "shop"}, batch=batch)
        options: dict[str, Any] = {
            "external_id": EXTERNAL_ID,
            "botocore_session": fresh_session(),
            "credential_cache": cache,
        }
        dest = (
            AwsLambdaDestination(f"contract-{kind}", configured, **options)
            if configured.batch is None
            else BatchingAwsLambdaDestination(f"contract-{kind}", configured, configured.batch, **options)
        )
        await dest.check()  # resolve endpoints now, while the environment points at this kind
        harness.made.append(dest)
        return dest

    async def secrets() -> list[str]:
        found = [user.secret_key]
        for creds in cache._sessions.values():
            found += [creds.secret_key, creds.token or ""]
        return [s for s in found if s]

    harness = Harness(make, secrets)
    yield harness
    for dest in harness.made:
        await dest.close()
    for recorder in lambdas.values():
        await recorder.stop()


HARNESSES = {"aws_lambda": _aws_lambda, "aws_lambda_batch": functools.partial(_aws_lambda, batch={})}
BATCHING = ["aws_lambda_batch"]  # the harnesses whose destinations are BatchDestinations


@pytest.fixture(params=sorted(HARNESSES))
async def harness(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    moto: tuple[MotoServer, IamUser],
) -> AsyncIterator[Harness]:
    async for h in HARNESSES[request.param](monkeypatch, tmp_path, moto):
        yield h


@pytest.fixture(params=BATCHING)
async def batch_harness(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    moto: tuple[MotoServer, IamUser],
) -> AsyncIterator[Harness]:
    """The harnesses of the types configured to batch: the send_batch part of the contract."""
    async for h in HARNESSES[request.param](monkeypatch, tmp_path, moto):
        yield h


async def _send(dest: Destination, within: float = 10.0, event: dict[str, Any] = EVENT) -> Outcome:
    return await dest.send(request_for(event), within)


async def test_is_a_destination(harness: Harness) -> None:
    dest = await harness.make("working")
    assert isinstance(dest, Destination)
    assert isinstance(dest.name, str) and dest.name


async def test_a_connection_check_reports_each_target_and_never_raises(harness: Harness) -> None:
    working, dead = await harness.make("working"), await harness.make("dead")
    if not isinstance(working, CheckableDestination) or not isinstance(dead, CheckableDestination):
        pytest.skip("this destination type declares no connection check")
    results = await working.check(timeout=10.0)
    assert results and all(isinstance(t, str) and isinstance(o, Outcome) for t, o in results)
    assert all(o.ok for _, o in results)
    failed = await dead.check(timeout=10.0)
    assert failed and not any(o.ok for _, o in failed)
    assert all(o.error_message for _, o in failed)


async def test_working_endpoint_delivers(harness: Harness) -> None:
    dest = await harness.make("working")
    outcome = await _send(dest)
    assert isinstance(outcome, Outcome)
    assert (outcome.category, outcome.verdict) == (Category.DELIVERED, Verdict.SUCCESS)
    assert outcome.ok
    assert outcome.latency_ms > 0


async def test_every_call_type_is_wanted_and_delivered(harness: Harness) -> None:
    dest = await harness.make("working")
    for call_type in CALL_TYPES:
        event = {"type": call_type, "userId": "u1"}
        assert dest.wants(event) is True
        assert (await _send(dest, event=event)).ok


async def test_error_answer_is_an_outcome_not_an_exception(harness: Harness) -> None:
    dest = await harness.make("failing")
    outcome = await _send(dest)
    assert not outcome.ok
    assert outcome.verdict is Verdict.RETRY
    assert outcome.error_type and outcome.error_message


async def test_dead_endpoint_never_raises(harness: Harness) -> None:
    dest = await harness.make("dead")
    outcome = await _send(dest)
    assert not outcome.ok
    assert outcome.verdict is not Verdict.SUCCESS
    assert outcome.error_message


async def test_timeout_is_respected(harness: Harness) -> None:
    dest = await harness.make("slow")
    started = time.monotonic()
    outcome = await _send(dest, within=0.5)
    elapsed = time.monotonic() - started
    assert outcome.category is Category.TIMEOUT
    assert 0.5 <= elapsed < 0.5 + TIMEOUT_TOLERANCE


async def test_every_outcome_carries_the_latency_of_its_attempt(harness: Harness) -> None:
    # the destination measures its attempt; the delivery worker records what it says
    for kind in ("working", "failing", "dead"):
        outcome = await _send(await harness.make(kind))
        assert outcome.latency_ms > 0, kind
    late = await _send(await harness.make("slow"), within=0.5)
    assert (late.category, late.verdict) == (Category.TIMEOUT, Verdict.RETRY)
    assert 500 <= late.latency_ms < (0.5 + TIMEOUT_TOLERANCE) * 1000


async def test_an_event_of_no_known_call_type_is_an_outcome_not_an_exception(harness: Harness) -> None:
    dest = await harness.make("working")
    for event in ({"type": "no-such-type", "userId": "u1"}, {"userId": "u1"}):
        outcome = await _send(dest, event=event)
        assert isinstance(outcome, Outcome) and outcome.category in set(Category)


async def test_concurrent_sends_each_get_their_outcome(harness: Harness) -> None:
    dest = await harness.make("working")
    outcomes = await asyncio.gather(*(_send(dest) for _ in range(40)))
    assert [o.category for o in outcomes] == [Category.DELIVERED] * 40


async def test_close_is_idempotent_and_send_after_close_does_not_raise(harness: Harness) -> None:
    dest = await harness.make("working")
    assert (await _send(dest)).ok
    await dest.close()
    await dest.close()
    outcome = await _send(dest)
    assert isinstance(outcome, Outcome)


async def test_no_secret_in_any_outcome(harness: Harness) -> None:
    outcomes = []
    for kind in ("working", "failing", "dead"):
        outcomes.append(await _send(await harness.make(kind)))
    secrets = await harness.secrets()
    assert secrets
    for outcome in outcomes:
        text = repr(outcome) + orjson.dumps(dataclasses.asdict(outcome), default=str).decode()
        for secret in secrets:
            assert secret not in text


# -- BatchDestination: send_batch, for the types configured to batch ------------------------------
async def _batching(harness: Harness, kind: str) -> BatchDestination:
    dest = await harness.make(kind)
    assert isinstance(dest, BatchDestination), "a batching harness must build a BatchDestination"
    return dest


async def _send_batch(dest: BatchDestination, count: int = 5, within: float = 10.0) -> BatchOutcome:
    requests = [request_for({**EVENT, "messageId": f"m-{n}"}) for n in range(count)]
    return await dest.send_batch(requests, within)


async def test_a_batch_gets_one_outcome_per_event_in_order(batch_harness: Harness) -> None:
    dest = await _batching(batch_harness, "working")
    result = await _send_batch(dest, 7)
    assert result.invoke.ok and len(result.events) == 7 and all(o.ok for o in result.events)
    assert 0 < result.payload_bytes <= dest.batch.max_bytes and result.invoke.latency_ms > 0


async def test_a_failing_or_dead_endpoint_fails_the_whole_batch_without_raising(batch_harness: Harness) -> None:
    for kind in ("failing", "dead"):
        result = await _send_batch(await _batching(batch_harness, kind))
        assert not result.invoke.ok and result.invoke.error_message, kind
        assert len(result.events) == 5 and not any(o.ok for o in result.events), kind


async def test_a_batch_respects_the_timeout(batch_harness: Harness) -> None:
    dest = await _batching(batch_harness, "slow")
    started = time.monotonic()
    result = await _send_batch(dest, within=0.5)
    assert result.invoke.category is Category.TIMEOUT
    assert 0.5 <= time.monotonic() - started < 0.5 + TIMEOUT_TOLERANCE


async def test_no_secret_in_any_batch_outcome(batch_harness: Harness) -> None:
    results = [await _send_batch(await _batching(batch_harness, kind)) for kind in ("working", "failing", "dead")]
    secrets = await batch_harness.secrets()
    for result in results:
        text = repr(result) + orjson.dumps(dataclasses.asdict(result), default=str).decode()
        for secret in secrets:
            assert secret not in text


async def test_send_batch_after_close_does_not_raise(batch_harness: Harness) -> None:
    dest = await _batching(batch_harness, "working")
    await dest.close()
    result = await _send_batch(dest)
    assert len(result.events) == 5
