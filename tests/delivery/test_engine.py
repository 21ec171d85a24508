"""The delivery engine over the in-memory queue and log, with scripted destinations."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from eventrelay.core import telemetry
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.core.records import AttemptRecord, Job
from eventrelay.delivery import worker as worker_module
from eventrelay.deliverylog.memory import MemoryDeliveryLog
from eventrelay.queue.memory import MemoryQueue

from .conftest import FakeDestination, Harness, append, delivered, eventually, failing, policy


def metric(name: str, **labels: str) -> float:
    return telemetry.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_delivered_event_is_recorded_with_its_request_and_acked(harness: Harness) -> None:
    dest = FakeDestination("d-ok")
    before = metric("eventrelay_events_delivered_total", destination="d-ok")
    await harness.engine({"d-ok": (dest, policy())})
    await append(harness.queue, ("d-ok",), "m1", "m2", "m3")
    await eventually(lambda: harness.statuses("d-ok") == dict.fromkeys(("m1", "m2", "m3"), "delivered"))
    await eventually(lambda: len(harness.queue._jobs) == 0, what="queue emptied")
    record = harness.log.records[0]
    assert (record.attempt, record.category, record.function, record.qualifier) == (
        1,
        Category.DELIVERED,
        "fn",
        "live",
    )
    assert record.invocation_type == "RequestResponse" and record.status_code == 200
    assert record.latency_ms >= 0 and record.source == "web" and record.call_type == "track"
    await eventually(lambda: metric("eventrelay_events_delivered_total", destination="d-ok") == before + 3)
    assert sorted(dest.ids_sent()) == ["m1", "m2", "m3"]


class CheckingQueue(MemoryQueue):
    """Fails the test if a job is settled before its attempt is in the delivery log."""

    def __init__(self, log: MemoryDeliveryLog) -> None:
        super().__init__()
        self.log = log
        self.settled_before_recorded: list[str] = []

    def _check(self, job: Job) -> None:
        if (job.message_id, job.destination) not in self.log.rows:
            self.settled_before_recorded.append(job.message_id)

    async def ack(self, job: Job) -> None:
        self._check(job)
        await super().ack(job)

    async def retry(self, job: Job, due_at: float) -> None:
        self._check(job)
        await super().retry(job, due_at)

    async def postpone(self, job: Job, due_at: float) -> None:
        self._check(job)
        await super().postpone(job, due_at)


async def test_outcome_is_recorded_before_the_queue_settles() -> None:
    log = MemoryDeliveryLog()
    queue = CheckingQueue(log)
    harness = Harness(queue, log)
    dest = FakeDestination(
        "d-order", respond=lambda e, n: delivered() if n > 3 else failing(Category.THROTTLED, Verdict.RETRY)
    )
    await harness.engine({"d-order": (dest, policy())})
    await append(queue, ("d-order",), *[f"m{i}" for i in range(6)])
    await eventually(
        lambda: set(harness.statuses("d-order").values()) == {"delivered"} and len(harness.statuses("d-order")) == 6
    )
    await harness.engines[0].stop()
    assert queue.settled_before_recorded == []


async def test_retries_with_jittered_backoff_until_delivered(harness: Harness) -> None:
    dest = FakeDestination(
        "d-retry",
        respond=lambda e, n: delivered() if n >= 4 else failing(Category.AWS_ERROR, Verdict.RETRY, status_code=503),
    )
    await harness.engine({"d-retry": (dest, policy(backoff_base=0.05, backoff_cap=0.15))})
    await append(harness.queue, ("d-retry",), "m1")
    await eventually(lambda: harness.statuses("d-retry").get("m1") == "delivered")
    records = harness.log.records
    assert [(r.attempt, r.status) for r in records] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "retrying"),
        (4, "delivered"),
    ]
    for r in records[:3]:
        bound = min(0.15, 0.05 * 2 ** (r.attempt - 1))
        finished = r.started_at + r.latency_ms / 1000
        assert r.next_attempt_at is not None
        assert -0.01 <= r.next_attempt_at - finished <= bound + 0.01  # full jitter within the bound
        assert r.category is Category.AWS_ERROR and r.status_code == 503
    for earlier, later in itertools.pairwise(records):
        assert earlier.next_attempt_at is not None and later.started_at >= earlier.next_attempt_at - 0.001


async def test_retry_after_from_the_destination_is_honoured(harness: Harness) -> None:
    dest = FakeDestination(
        "d-429",
        respond=lambda e, n: (
            delivered() if n >= 2 else failing(Category.THROTTLED, Verdict.RETRY, status_code=429, retry_after=0.4)
        ),
    )
    await harness.engine({"d-429": (dest, policy())})
    await append(harness.queue, ("d-429",), "m1")
    await eventually(lambda: harness.statuses("d-429").get("m1") == "delivered")
    (t1, _), (t2, _) = dest.sent
    assert t2 - t1 >= 0.39
    assert harness.log.records[0].category is Category.THROTTLED


async def test_gives_up_after_the_attempt_cap_keeps_the_event_and_redrive_delivers_it(
    harness: Harness,
) -> None:
    healthy = False

    def respond(event: Mapping[str, Any], n: int) -> Outcome:
        return delivered() if healthy else failing(Category.EXECUTION_ERROR, Verdict.RETRY, error_type="Unhandled")

    dest = FakeDestination("d-cap", respond=respond)
    before = metric("eventrelay_events_failed_total", destination="d-cap", category="execution_error")
    await harness.engine({"d-cap": (dest, policy(max_attempts=3))})
    await append(harness.queue, ("d-cap",), "m1")
    await eventually(lambda: harness.statuses("d-cap").get("m1") == "failed")
    assert len(dest.sent) == 3
    await eventually(lambda: len(harness.queue._dead) == 1, what="dead-lettered in the queue")
    (dead,) = harness.queue._dead.values()
    assert dead[1] == "failed" and "max_attempts 3" in dead[2] and "Unhandled" in dead[2]
    await asyncio.sleep(0.2)
    assert len(dest.sent) == 3  # dead-lettered: no more attempts
    assert metric("eventrelay_events_failed_total", destination="d-cap", category="execution_error") == before + 1

    healthy = True
    assert await harness.queue.redrive("d-cap") == 1
    harness.engines[0].notify(["d-cap"])
    await eventually(lambda: harness.statuses("d-cap").get("m1") == "delivered")


async def test_gives_up_when_the_retry_window_has_passed(harness: Harness) -> None:
    dest = FakeDestination("d-window", respond=lambda e, n: failing(Category.TIMEOUT, Verdict.RETRY))
    await harness.engine({"d-window": (dest, policy(retry_window=0.5))})
    await append(harness.queue, ("d-window",), "m1", received_at=time.time() - 1.0)
    await eventually(lambda: harness.statuses("d-window").get("m1") == "failed")
    assert len(dest.sent) == 1
    await eventually(lambda: len(harness.queue._dead) == 1, what="dead-lettered in the queue")
    assert "retry window" in next(iter(harness.queue._dead.values()))[2]


async def test_configuration_error_is_discarded_with_its_reason(harness: Harness) -> None:
    dest = FakeDestination(
        "d-404",
        respond=lambda e, n: failing(
            Category.CONFIGURATION,
            Verdict.DISCARD,
            status_code=404,
            error_type="ResourceNotFoundException",
            error_message="Function not found: arn:aws:lambda:us-west-2:123456789012:function:nope",
        ),
    )
    await harness.engine({"d-404": (dest, policy())})
    await append(harness.queue, ("d-404",), "m1")
    await eventually(lambda: harness.statuses("d-404").get("m1") == "discarded")
    await asyncio.sleep(0.1)
    assert len(dest.sent) == 1
    await eventually(lambda: len(harness.queue._dead) == 1, what="dead-lettered in the queue")
    (dead,) = harness.queue._dead.values()
    assert dead[1] == "discarded" and "Function not found" in dead[2]
    assert harness.log.records[0].next_attempt_at is None


@pytest.mark.parametrize(("retry_execution_errors", "sends"), [(False, 1), (True, 2)])
async def test_execution_errors_are_retried_only_when_configured(
    harness: Harness,
    retry_execution_errors: bool,
    sends: int,
) -> None:
    dest = FakeDestination(
        "d-exec",
        respond=lambda e, n: (
            delivered()
            if n >= 2
            else failing(Category.EXECUTION_ERROR, Verdict.RETRY, error_type="Unhandled", log_tail="Traceback ...")
        ),
    )
    await harness.engine({"d-exec": (dest, policy(retry_execution_errors=retry_execution_errors))})
    await append(harness.queue, ("d-exec",), "m1")
    final = "delivered" if retry_execution_errors else "failed"
    await eventually(lambda: harness.statuses("d-exec").get("m1") == final)
    assert len(dest.sent) == sends
    first = harness.log.records[0]
    assert first.category is Category.EXECUTION_ERROR and first.log_tail == "Traceback ..."
    assert b'"messageId":"m1"' in first.event  # "You sent", kept with the failed attempt
    if not retry_execution_errors:
        await eventually(lambda: len(harness.queue._dead) == 1, what="dead-lettered in the queue")
        assert "retry_execution_errors is false" in next(iter(harness.queue._dead.values()))[2]


async def test_access_denied_pauses_the_whole_destination_then_recovers(
    harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "PAUSE_MIN", 0.5)
    denied = True

    def respond(event: Mapping[str, Any], n: int) -> Outcome:
        if denied:
            return failing(Category.ACCESS_DENIED, Verdict.BACKOFF_DESTINATION, error_type="AccessDenied")
        return delivered()

    dest = FakeDestination("d-denied", respond=respond)
    other = FakeDestination("d-other")
    engine = await harness.engine({"d-denied": (dest, policy(concurrency=1)), "d-other": (other, policy())})
    await append(harness.queue, ("d-denied",), *[f"m{i}" for i in range(5)])
    await eventually(lambda: len(dest.sent) == 1)
    t_denied = dest.sent[0][0]
    assert engine.status()["d-denied"]["paused"] is True

    await append(harness.queue, ("d-other",), "o1", "o2")  # another destination is not paused
    engine.notify(["d-other", "d-denied"])
    await eventually(lambda: len(other.sent) == 2, within=0.4, what="the other destination delivering")
    await asyncio.sleep(0.2)
    assert len(dest.sent) == 1  # no sends while paused, not even on notify
    assert harness.log.records[0].status == "retrying" and harness.log.records[0].attempt == 1

    denied = False
    await eventually(
        lambda: set(harness.statuses("d-denied").values()) == {"delivered"} and len(harness.statuses("d-denied")) == 5,
        within=5,
    )
    assert dest.sent[1][0] - t_denied >= 0.45  # resumed only after the pause
    assert engine.status()["d-denied"]["paused"] is False


async def test_destination_wide_pause_grows_while_access_stays_denied(
    harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "PAUSE_MIN", 0.2)
    dest = FakeDestination(
        "d-grow",
        respond=lambda e, n: (
            delivered()
            if n >= 4
            else failing(Category.INVALID_CREDENTIALS, Verdict.BACKOFF_DESTINATION, error_type="InvalidClientTokenId")
        ),
    )
    await harness.engine({"d-grow": (dest, policy(concurrency=1))})
    await append(harness.queue, ("d-grow",), "m1")
    await eventually(lambda: harness.statuses("d-grow").get("m1") == "delivered", within=8)
    times = [t for t, _ in dest.sent]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.19 and gaps[1] >= 0.39 and gaps[2] >= 0.79  # 0.2, 0.4, 0.8 s


async def test_a_hanging_destination_does_not_slow_another(harness: Harness) -> None:
    slow = FakeDestination("d-slow", delay=10.0)  # hangs until its timeout
    fast = FakeDestination("d-fast")
    await harness.engine(
        {"d-slow": (slow, policy(timeout=1.5, concurrency=4)), "d-fast": (fast, policy(concurrency=4))}
    )
    await append(harness.queue, ("d-slow",), *[f"s{i}" for i in range(40)])
    await eventually(lambda: slow.in_flight == 4)
    latencies = []
    for i in range(20):
        t0 = time.monotonic()
        await append(harness.queue, ("d-fast",), f"f{i}")
        harness.engines[0].notify(["d-fast"])
        await eventually(lambda i=i: harness.statuses("d-fast").get(f"f{i}") == "delivered")
        latencies.append(time.monotonic() - t0)
    assert max(latencies) < 0.25, latencies
    assert slow.max_in_flight == 4  # the slow one is held to its own concurrency


async def test_concurrency_limit_is_respected(harness: Harness) -> None:
    dest = FakeDestination("d-conc", delay=0.05)
    await harness.engine({"d-conc": (dest, policy(concurrency=3))})
    await append(harness.queue, ("d-conc",), *[f"m{i}" for i in range(15)])
    await eventually(lambda: len(harness.statuses("d-conc")) == 15)
    assert dest.max_in_flight == 3


async def test_graceful_stop_finishes_and_settles_attempts_in_flight(harness: Harness) -> None:
    dest = FakeDestination("d-stop", delay=0.3)
    engine = await harness.engine({"d-stop": (dest, policy(concurrency=4))})
    await append(harness.queue, ("d-stop",), *[f"m{i}" for i in range(6)])
    await eventually(lambda: dest.in_flight == 4)
    await engine.stop()
    assert harness.statuses("d-stop") == dict.fromkeys((f"m{i}" for i in range(4)), "delivered")
    assert await harness.queue.depth("d-stop") == 2  # never claimed after stop began
    await asyncio.sleep(0.1)
    assert len(dest.sent) == 4


async def test_stop_claiming_lets_attempts_in_flight_finish_and_claims_nothing_new(harness: Harness) -> None:
    dest = FakeDestination("d-sigterm", delay=0.3)
    engine = await harness.engine({"d-sigterm": (dest, policy(concurrency=4))})
    await append(harness.queue, ("d-sigterm",), *[f"m{i}" for i in range(6)])
    await eventually(lambda: dest.in_flight == 4)
    engine.stop_claiming()  # SIGTERM: the server still finishes its requests before engine.stop()
    await engine.set_targets({"d-sigterm": (FakeDestination("d-sigterm"), policy())})  # a late reconfigure
    await eventually(lambda: harness.statuses("d-sigterm") == dict.fromkeys((f"m{i}" for i in range(4)), "delivered"))
    await asyncio.sleep(0.1)
    assert len(dest.sent) == 4 and await harness.queue.depth("d-sigterm") == 2
    await engine.stop()
    assert len(dest.sent) == 4


async def test_stop_cancels_attempts_past_the_wait_and_leaves_them_queued(harness: Harness) -> None:
    dest = FakeDestination("d-hang", delay=100.0)
    engine = await harness.engine({"d-hang": (dest, policy(timeout=60, concurrency=2))})
    await append(harness.queue, ("d-hang",), "m1", "m2")
    await eventually(lambda: dest.in_flight == 2)
    await engine.stop(wait_seconds=0.1)
    assert dest.finished == [] and harness.log.records == []
    assert await harness.queue.depth("d-hang") == 2  # not acked: the lease returns them

    for handle, (job, due, _lease) in list(harness.queue._jobs.items()):  # the lease lapses
        harness.queue._jobs[handle] = (job, due, 0.0)
    dest.delay = 0.0
    await harness.engine({"d-hang": (dest, policy())})
    await eventually(lambda: harness.statuses("d-hang") == {"m1": "delivered", "m2": "delivered"})


async def test_set_targets_adds_removes_and_swaps_destinations(harness: Harness) -> None:
    a, b = FakeDestination("a"), FakeDestination("b")
    engine = await harness.engine({"a": (a, policy())})
    await append(harness.queue, ("a", "b"), "m1")
    await eventually(lambda: harness.statuses("a").get("m1") == "delivered")
    await asyncio.sleep(0.05)
    assert b.sent == []

    await engine.set_targets({"a": (a, policy()), "b": (b, policy())})
    await eventually(lambda: harness.statuses("b").get("m1") == "delivered")

    await engine.set_targets({"b": (b, policy())})
    await append(harness.queue, ("a", "b"), "m2")
    engine.notify(["a", "b"])
    await eventually(lambda: harness.statuses("b").get("m2") == "delivered")
    await asyncio.sleep(0.1)
    assert "m2" not in a.ids_sent() and await harness.queue.depth("a") == 1

    b2 = FakeDestination("b")
    await engine.set_targets({"b": (b2, policy())})
    await append(harness.queue, ("b",), "m3")
    engine.notify(["b"])
    await eventually(lambda: harness.statuses("b").get("m3") == "delivered")
    assert b2.ids_sent() == ["m3"] and "m3" not in b.ids_sent()


async def test_set_targets_lets_a_removed_destinations_attempts_finish(harness: Harness) -> None:
    slow = FakeDestination("slow", delay=0.3)
    engine = await harness.engine({"slow": (slow, policy())})
    await append(harness.queue, ("slow",), "m1")
    await eventually(lambda: slow.in_flight == 1)
    await engine.set_targets({})
    assert harness.statuses("slow") == {"m1": "delivered"}


async def test_notify_wakes_an_idle_worker_at_once(harness: Harness) -> None:
    dest = FakeDestination("d-idle")
    engine = await harness.engine({"d-idle": (dest, policy())})
    await asyncio.sleep(1.2)  # idle polling has backed off to its maximum
    t0 = time.monotonic()
    await append(harness.queue, ("d-idle",), "m1")
    engine.notify(["d-idle"])
    await eventually(lambda: len(dest.sent) == 1)
    assert dest.sent[0][0] - t0 < 0.1


async def test_without_notify_idle_polling_still_finds_new_work(harness: Harness) -> None:
    dest = FakeDestination("d-poll")
    await harness.engine({"d-poll": (dest, policy())})
    await asyncio.sleep(1.2)
    await append(harness.queue, ("d-poll",), "m1")
    await eventually(lambda: len(dest.sent) == 1, within=2.0)


async def test_every_send_is_given_the_events_source(harness: Harness) -> None:
    dest = FakeDestination("d-src")
    await harness.engine({"d-src": (dest, policy())})
    await append(harness.queue, ("d-src",), "m1")
    await eventually(lambda: harness.statuses("d-src").get("m1") == "delivered")
    assert dest.sources == ["web"]


async def test_a_destination_that_raises_is_retried_not_lost(harness: Harness) -> None:
    def respond(event: Mapping[str, Any], n: int) -> Outcome:
        if n == 1:
            raise RuntimeError("bug in a destination")
        return delivered()

    dest = FakeDestination("d-raise", respond=respond)
    await harness.engine({"d-raise": (dest, policy())})
    await append(harness.queue, ("d-raise",), "m1")
    await eventually(lambda: harness.statuses("d-raise").get("m1") == "delivered")
    assert harness.log.records[0].error_type == "RuntimeError" and harness.log.records[0].status == "retrying"


class FailingLog(MemoryDeliveryLog):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    async def record(self, attempts: Sequence[AttemptRecord]) -> None:
        if self.fail:
            raise OSError("disk I/O error")
        await super().record(attempts)


async def test_when_the_log_cannot_record_the_job_stays_queued() -> None:
    log = FailingLog()
    harness = Harness(MemoryQueue(), log)
    dest = FakeDestination("d-nolog")
    engine = await harness.engine({"d-nolog": (dest, policy())})
    await append(harness.queue, ("d-nolog",), "m1")
    await eventually(lambda: len(dest.sent) == 1)
    await asyncio.sleep(0.05)
    assert await harness.queue.depth("d-nolog") == 1 and log.records == []
    await engine.stop()


async def test_a_stored_body_that_is_not_json_is_discarded_not_retried(harness: Harness) -> None:
    from eventrelay.core.records import Accepted

    dest = FakeDestination("d-bad")
    await harness.engine({"d-bad": (dest, policy())})
    await harness.queue.append([Accepted("m1", "web", "track", time.time(), b"not json", ("d-bad",))])
    await eventually(lambda: harness.statuses("d-bad").get("m1") == "discarded")
    assert dest.sent == [] and harness.log.records[0].category is Category.CONFIGURATION


@pytest.mark.timeout(30)
async def test_a_notified_worker_at_its_concurrency_limit_does_not_starve_the_event_loop(
    harness: Harness,
) -> None:
    dest = FakeDestination("d-full", delay=0.3)
    engine = await harness.engine({"d-full": (dest, policy(concurrency=2))})
    await append(harness.queue, ("d-full",), *[f"m{i}" for i in range(6)])
    await eventually(lambda: dest.in_flight == 2)
    engine.notify(["d-full"])  # new work arrives while every slot is busy
    t0 = time.monotonic()
    await asyncio.sleep(0.01)
    assert time.monotonic() - t0 < 0.25  # other tasks (ingest, the admin API) still run
    await eventually(lambda: len(harness.statuses("d-full")) == 6)
    assert dest.max_in_flight == 2
