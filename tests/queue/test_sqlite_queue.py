"""SQLite queue specifics: group commit, leases across restarts, cleanup, errors."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from eventrelay.core.errors import StorageError
from eventrelay.core.records import Accepted
from eventrelay.queue.sqlite import store as sqlite_store
from eventrelay.queue.sqlite.schema import SCHEMA_VERSION
from tests.queue.conftest import OpenQueue, event


def rows(path: Path, sql: str) -> int:
    """Count with a separate connection, as an operator's sqlite3 shell would."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_concurrent_appends_share_commits(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    before = queue.commits

    results = await asyncio.gather(*(queue.append([event()]) for _ in range(200)))

    assert results == [[True]] * 200
    assert await queue.depth() == 200
    commits = queue.commits - before
    assert 1 <= commits <= 40, f"200 concurrent appends took {commits} commits"


async def test_concurrent_acks_share_commits(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    await queue.append([event() for _ in range(200)])
    jobs = await queue.claim("lambda", 200, 30.0)
    before = queue.commits

    await asyncio.gather(*(queue.ack(job) for job in jobs))

    assert await queue.depth() == 0
    assert queue.commits - before <= 40


async def test_settled_jobs_are_deleted(open_queue: OpenQueue, tmp_path: Path) -> None:
    queue = await open_queue()
    await queue.append([event("a", "b"), event("a")])
    jobs_a = await queue.claim("a", 10, 30.0)
    [job_b] = await queue.claim("b", 10, 30.0)

    for job in jobs_a:
        await queue.ack(job)
    assert rows(tmp_path / "queue.db", "SELECT COUNT(*) FROM jobs") == 1  # b still needs its event

    await queue.ack(job_b)
    assert rows(tmp_path / "queue.db", "SELECT COUNT(*) FROM jobs") == 0
    assert rows(tmp_path / "queue.db", "SELECT COUNT(*) FROM dedup") == 2  # dedup memory stays


async def test_dead_jobs_keep_their_event(open_queue: OpenQueue, tmp_path: Path) -> None:
    queue = await open_queue()
    item = event()
    await queue.append([item])
    [job] = await queue.claim("lambda", 10, 30.0)

    await queue.dead_letter(job, "failed", "boom")

    assert rows(tmp_path / "queue.db", "SELECT COUNT(*) FROM jobs WHERE reason = 'boom' AND length(body) > 1000") == 1
    assert await queue.redrive("lambda") == 1
    [back] = await queue.claim("lambda", 10, 30.0)
    assert back.body == item.body


async def test_restart_releases_leases_of_the_previous_process(open_queue: OpenQueue, tmp_path: Path) -> None:
    queue = await open_queue()
    await queue.append([event(), event()])
    assert len(await queue.claim("lambda", 10, 3600.0)) == 2
    await queue.close()

    reopened = await open_queue()

    assert len(await reopened.claim("lambda", 10, 30.0)) == 2


async def test_expired_dedup_entries_are_swept(
    open_queue: OpenQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "DEDUP_SWEEP_INTERVAL", 0.0)
    monkeypatch.setattr(sqlite_store, "DEDUP_SWEEP_ROWS", 3)  # bounded work per pass
    queue = await open_queue(dedup_window=1.0)
    await queue.append([event() for _ in range(5)])
    await asyncio.sleep(1.1)

    await queue.append([event()])  # a pass removes the 3 oldest expired entries
    assert rows(tmp_path / "queue.db", "SELECT COUNT(*) FROM dedup") == 3
    await queue.append([event()])  # the next pass the 2 left; the 2 recent ones stay
    assert rows(tmp_path / "queue.db", "SELECT COUNT(*) FROM dedup") == 2


async def test_cancelled_append_still_commits_and_the_queue_carries_on(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    item = event()
    task = asyncio.create_task(queue.append([item]))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await queue.append([event()]) == [True]
    assert await queue.append([item]) == [False]  # the cancelled caller's event was stored


async def test_unusable_path_is_a_storage_error(tmp_path: Path) -> None:
    from eventrelay.queue.sqlite import SQLiteQueue

    (tmp_path / "queue.db").mkdir()
    queue = SQLiteQueue(tmp_path / "queue.db", max_events=10, dedup_window=60.0)

    with pytest.raises(StorageError, match=r"queue\.db"):
        await queue.start()


async def test_calls_after_close_are_refused(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    await queue.close()

    with pytest.raises(StorageError, match="closed"):
        await queue.append([event()])


async def test_claim_from_a_large_backlog_takes_only_its_limit(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    for _ in range(10):
        await queue.append([event() for _ in range(1_000)])

    jobs = await queue.claim("lambda", 7, 30.0)

    assert len(jobs) == 7
    assert await queue.depth() == 10_000


async def test_a_flood_is_split_into_bounded_transactions(
    open_queue: OpenQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventrelay.queue.sqlite import queue as sqlite_queue

    monkeypatch.setattr(sqlite_queue, "MAX_BATCH_ROWS", 50)
    queue = await open_queue()
    before = queue.commits

    results = await asyncio.gather(*(queue.append([event() for _ in range(20)]) for _ in range(20)))

    assert all(r == [True] * 20 for r in results)
    assert await queue.depth() == 400
    assert queue.commits - before >= 10  # at most two 20-event appends (40 rows <= 50) per commit


async def test_queue_full_refuses_one_request_not_its_batch_mates(open_queue: OpenQueue) -> None:
    queue = await open_queue(max_events=10)

    small, big = await asyncio.gather(
        queue.append([event()]), queue.append([event() for _ in range(20)]), return_exceptions=True
    )

    assert small == [True]
    assert type(big).__name__ == "QueueFull"
    assert await queue.depth() == 1


async def test_a_file_of_an_older_layout_is_refused_clearly(tmp_path: Path) -> None:
    from eventrelay.queue.sqlite import SQLiteQueue

    with sqlite3.connect(tmp_path / "queue.db") as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body BLOB)")
    queue = SQLiteQueue(tmp_path / "queue.db", max_events=10, dedup_window=60.0)

    with pytest.raises(StorageError, match=r"queue\.db.*layout 0.*move the file away"):
        await queue.start()


async def test_a_claim_of_only_empty_bodies(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    items = [Accepted(f"m-empty-{i}", "web", "track", 1.5, b"", ("lambda",)) for i in range(3)]
    await queue.append(items)

    jobs = await queue.claim("lambda", 10, 30.0)

    assert sorted((j.message_id, j.body) for j in jobs) == [(i.message_id, b"") for i in items]


LAYOUT_3_JOBS = """CREATE TABLE jobs (
    id INTEGER PRIMARY KEY, destination TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'ready',
    due_at REAL NOT NULL, leased INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at REAL, redriven_at REAL, message_id TEXT NOT NULL, source TEXT NOT NULL,
    call_type TEXT NOT NULL, received_at REAL NOT NULL, dead_status TEXT, reason TEXT, body BLOB NOT NULL
)"""


async def test_a_file_of_layout_3_gets_the_batch_column_and_keeps_its_jobs(tmp_path: Path) -> None:
    from eventrelay.queue.sqlite import SQLiteQueue

    with sqlite3.connect(tmp_path / "queue.db") as conn:  # the layout before Job.batch
        conn.execute(LAYOUT_3_JOBS)
        conn.execute(
            "INSERT INTO jobs (destination, due_at, message_id, source, call_type, received_at, body)"
            " VALUES ('lambda', 0, 'm-old', 'web', 'track', 1.5, x'7b7d')"
        )
        conn.execute("PRAGMA user_version = 3")
    queue = SQLiteQueue(tmp_path / "queue.db", max_events=10, dedup_window=60.0)
    await queue.start()
    try:
        [job] = await queue.claim("lambda", 10, 30.0)
        assert (job.message_id, job.body, job.batch) == ("m-old", b"{}", None)
        await queue.retry(replace(job, batch="b1/2/0"), 0.0)
        [again] = await queue.claim("lambda", 10, 30.0)
        assert (again.batch, again.attempts) == ("b1/2/0", 1)
    finally:
        await queue.close()
    with sqlite3.connect(tmp_path / "queue.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # migrated to the current layout


async def test_a_file_of_layout_5_gets_the_lane_column_and_its_jobs_keep_no_order(tmp_path: Path) -> None:
    from eventrelay.queue.sqlite import SQLiteQueue

    with sqlite3.connect(tmp_path / "queue.db") as conn:  # the layout before per-user lanes
        conn.execute(LAYOUT_3_JOBS)
        conn.execute("ALTER TABLE jobs ADD COLUMN batch TEXT")
        conn.execute("ALTER TABLE jobs ADD COLUMN replay TEXT")
        for n in range(2):
            conn.execute(
                "INSERT INTO jobs (destination, due_at, message_id, source, call_type, received_at, body)"
                f" VALUES ('lambda', 0, 'm{n}', 'web', 'track', 1.5, x'7b7d')"
            )
        conn.execute("PRAGMA user_version = 5")
    queue = SQLiteQueue(tmp_path / "queue.db", max_events=10, dedup_window=60.0)
    await queue.start()
    try:
        await queue.order_lanes(["lambda"])
        jobs = await queue.claim("lambda", 10, 30.0)
        assert sorted(j.message_id for j in jobs) == ["m0", "m1"] and {j.lane for j in jobs} == {None}
    finally:
        await queue.close()
    with sqlite3.connect(tmp_path / "queue.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
