"""A re-drive gives an event a fresh retry window and attempt count, on every queue backend.

The scenario users hit: an event received 5 hours ago (past the default 4 h retry window) is
dead-lettered; an operator re-drives it; its first attempt after the re-drive fails (a 500 from
Lambda; a throttle would not count as an attempt: tests/delivery/test_flow.py). It must be retried
and delivered, not dead-lettered again at once, while the delivery log keeps the
event's original receivedAt (end-to-end latency counts from the receipt, not the re-drive).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventrelay.core.errors import StorageError
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.core.records import Accepted, Job
from eventrelay.delivery.decide import decide
from eventrelay.delivery.engine import DeliveryEngine
from eventrelay.delivery.redrive import RedriveFilter, redrive
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
from eventrelay.queue.sqlite import SQLiteQueue
from eventrelay.queue.sqlite.schema import SCHEMA_VERSION
from tests.contract.conftest import Queues
from tests.delivery.conftest import FakeDestination, delivered, eventually, failing, policy

DEST = "d-redrive"
RECEIVED_AGO = 5 * 3600.0  # past the default 4 h retry window
DEADLINE = 20.0  # generous: a loaded 2-core machine, a real nats-server


def failing_then_delivered(event: Mapping[str, Any], n: int) -> Outcome:
    """Calls 1 (before the re-drive) and 2 (the first after it) fail with a 500; call 3 delivers."""
    if n >= 3:
        return delivered()
    return failing(Category.AWS_ERROR, Verdict.RETRY, status_code=500, error_type="ServiceException")


async def test_an_event_redriven_after_its_window_is_retried_and_delivered(queues: Queues, tmp_path: Path) -> None:
    queue = await queues.open()
    log = SQLiteDeliveryLog(tmp_path / "deliverylog.db")
    await log.start()
    dest = FakeDestination(DEST, respond=failing_then_delivered)
    rules = policy()
    assert rules.retry_window == 4 * 3600.0  # the default window, which the event is past
    engine = DeliveryEngine(queue, log, {DEST: (dest, rules)})
    received_at = time.time() - RECEIVED_AGO
    body = orjson.dumps({"type": "track", "messageId": "m-old", "userId": "u1", "event": "Clicked"})
    await queue.append([Accepted("m-old", "web", "track", received_at, body, (DEST,))])
    await engine.start()
    try:
        # Before the re-drive: one attempt, failing, and the window is long gone: failed.
        await eventually(lambda: len(dest.sent) == 1, DEADLINE, "the first attempt")
        redriven_at = time.time()

        async def redriven() -> bool:  # the same path as the admin API and the CLI
            nonlocal redriven_at
            redriven_at = time.time()
            return await redrive(queue, log, DEST, RedriveFilter(), now=redriven_at) == 1

        await poll(redriven, "the failed event to reach the dead letters and be re-driven")
        engine.notify([DEST])
        await poll(lambda: _status(log, "delivered"), "the re-driven event to be delivered")
    finally:
        await engine.stop()
        await log.close()

    log = SQLiteDeliveryLog(tmp_path / "deliverylog.db")  # what a user reads afterwards
    await log.start()
    try:
        attempts = await log.attempts("m-old", DEST)
        [row] = await log.deliveries(destination=DEST)
        stats = await log.stats(DEST, received_at, time.time() + 1)
    finally:
        await log.close()
    assert len(dest.sent) == 3
    assert [(a.attempt, a.status, a.category) for a in attempts] == [
        (1, "failed", Category.AWS_ERROR),  # before: the window (from receipt) had passed
        (1, "retrying", Category.AWS_ERROR),  # after the re-drive: a fresh window and count
        (2, "delivered", Category.DELIVERED),
    ]
    assert attempts[1].started_at >= redriven_at - 1.0
    assert attempts[1].next_attempt_at is not None
    assert attempts[1].next_attempt_at - attempts[1].started_at < 60.0  # a backoff, not the window's end
    assert {a.received_at for a in attempts} == {received_at}  # the original receivedAt everywhere
    assert row.status == "delivered" and row.received_at == received_at
    assert row.delivered_at is not None and row.delivered_at - row.received_at >= RECEIVED_AGO
    assert stats.latency.count == 1
    assert stats.latency.p50_ms is not None and stats.latency.p50_ms >= RECEIVED_AGO * 1000  # from receipt
    assert await queue.depth(DEST) == 0


async def poll(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE}s waiting for {what}")
        await asyncio.sleep(0.05)


async def _status(log: SQLiteDeliveryLog, status: str) -> bool:
    rows = await log.deliveries(destination=DEST)
    return [r.status for r in rows] == [status]


# -- the decision itself (pure) -------------------------------------------------------------------
NOW = 1_800_000_000.0
FAILING = failing(Category.AWS_ERROR, Verdict.RETRY, status_code=500)


def old_job(*, attempts: int = 0, redriven_at: float | None = None) -> Job:
    """An event received 5 h before ``NOW``, past the default 4 h window."""
    return Job("h1", DEST, "m1", "web", "track", NOW - RECEIVED_AGO, b"{}", attempts, redriven_at=redriven_at)


def test_without_a_redrive_the_window_runs_from_receipt() -> None:
    s = decide(old_job(), FAILING, policy(), started_at=NOW, now=NOW)

    assert (s.action, s.dead_status) == ("dead_letter", "failed")
    assert "retry window of 14400s after receipt has passed" in s.reason


def test_a_recent_redrive_opens_a_fresh_window() -> None:
    s = decide(old_job(redriven_at=NOW - 10.0), FAILING, policy(), started_at=NOW, now=NOW)

    assert s.action == "retry" and s.due_at is not None and NOW <= s.due_at <= NOW + 1.0
    assert s.record.status == "retrying" and s.record.attempt == 1
    assert s.record.received_at == NOW - RECEIVED_AGO  # the log keeps the receipt


def test_the_fresh_window_also_ends() -> None:
    s = decide(old_job(attempts=3, redriven_at=NOW - RECEIVED_AGO + 60), FAILING, policy(), started_at=NOW, now=NOW)

    assert (s.action, s.dead_status) == ("dead_letter", "failed")
    assert "after re-drive has passed" in s.reason


def test_a_redrive_time_before_receipt_never_shortens_the_window() -> None:
    job = Job("h1", DEST, "m1", "web", "track", NOW - 60, b"{}", redriven_at=NOW - RECEIVED_AGO)

    assert decide(job, FAILING, policy(), started_at=NOW, now=NOW).action == "retry"


# -- the SQLite file layout ------------------------------------------------------------------------
async def test_a_queue_file_without_the_redrive_column_is_refused_clearly(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "queue.db") as conn:  # the layout before redriven_at
        conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, destination TEXT NOT NULL)")
        conn.execute("PRAGMA user_version = 2")
    queue = SQLiteQueue(tmp_path / "queue.db", max_events=10, dedup_window=60.0)

    with pytest.raises(
        StorageError, match=rf"queue\.db.*layout 2, this eventrelay uses {SCHEMA_VERSION}.*move the file away"
    ):
        await queue.start()
