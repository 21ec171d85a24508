"""The SQLite queue's archive: every accepted event once, in receipt order, kept after delivery
within its limits; and the replay operations that enqueue archived events as new jobs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from eventrelay.core.records import Accepted
from eventrelay.queue.archive import ArchiveLimits, ReplayRecord, Window
from eventrelay.queue.sqlite import SQLiteQueue
from eventrelay.queue.sqlite.archive_store import PRUNE_INTERVAL, archived_size
from tests.queue.conftest import BODY, OpenQueue, event

WEEK = ArchiveLimits(7 * 86400.0, 2 * 10**9)
ALL = Window(0.0, 1e12)


def replay(queue_span_first: int | None, last: int | None, *, limit: int = 10, rid: str = "rp_1") -> ReplayRecord:
    return ReplayRecord(
        id=rid, destination="new-dest", window=ALL, event=None, where=None, limit=limit,
        first_seq=queue_span_first, last_seq=last, matched=0, cursor=(queue_span_first or 1) - 1,
        enqueued=0, skipped=0, state="running", created_at=time.time(),
    )  # fmt: skip


async def test_every_new_event_is_archived_once_in_receipt_order_and_kept_after_delivery(
    open_queue: OpenQueue,
) -> None:
    queue = await open_queue(archive=WEEK)
    first = [event("a", "b", message_id="m1"), event(message_id="m2"), event(message_id="m1")]  # m1 twice
    unrouted = Accepted("m3", "web", "identify", time.time(), b'{"type":"identify"}', ())
    assert await queue.append(first) == [True, True, False]
    assert await queue.append([unrouted, event(message_id="m2")]) == [True, False]
    for destination in ("a", "b", "lambda"):
        for job in await queue.claim(destination, 10, 30.0):
            await queue.ack(job)  # delivered: gone from the queue, kept in the archive

    archived = await queue.archived(ALL, 0, 10**9, 100)
    assert [(e.message_id, e.call_type) for e in archived] == [("m1", "track"), ("m2", "track"), ("m3", "identify")]
    assert [e.seq for e in archived] == sorted(e.seq for e in archived)
    assert archived[2].body == b'{"type":"identify"}' and archived[0].body == BODY
    info = await queue.archive_info()
    assert (info.enabled, info.events, info.pruned_until) == (True, 3, None)
    assert info.bytes == sum(archived_size(e) for e in (first[0], first[1], unrouted))
    assert info.oldest is not None and info.oldest <= archived[-1].received_at
    assert await queue.depth() == 0


async def test_without_an_archive_nothing_is_kept(open_queue: OpenQueue) -> None:
    queue = await open_queue(archive=None)
    await queue.append([event()])
    info = await queue.archive_info()
    assert (info.enabled, info.events, info.bytes) == (False, 0, 0)
    assert await queue.archived(ALL, 0, 10**9, 10) == []


async def test_events_past_retention_are_removed_and_the_archive_says_until_when(open_queue: OpenQueue) -> None:
    queue = await open_queue(archive=ArchiveLimits(retention=1.0, max_bytes=10**9))
    old = [Accepted(f"old{i}", "web", "track", time.time() - 5, BODY, ("a",)) for i in range(3)]
    await queue.append(old)
    await asyncio.sleep(PRUNE_INTERVAL + 0.1)
    await queue.append([event("a", message_id="new")])  # a write transaction runs the prune step
    info = await queue.archive_info()
    assert [e.message_id for e in await queue.archived(ALL, 0, 10**9, 10)] == ["new"]
    assert info.events == 1 and info.pruned_until == old[-1].received_at
    assert await queue.depth("a") == 4  # the archive's retention never touches waiting jobs


async def test_beyond_max_bytes_the_oldest_events_go_first(open_queue: OpenQueue) -> None:
    size = archived_size(event(message_id="x" * 36))
    queue = await open_queue(archive=ArchiveLimits(retention=86400.0, max_bytes=10 * size))
    for i in range(15):
        await queue.append([event(message_id=f"{i:036d}")])
    info = await queue.archive_info()
    kept = [int(e.message_id) for e in await queue.archived(ALL, 0, 10**9, 100)]
    assert kept == list(range(5, 15)) and info.bytes <= 10 * size and info.events == 10


async def test_a_replay_enqueues_archived_events_as_marked_jobs_and_moves_its_cursor_once(
    open_queue: OpenQueue,
) -> None:
    queue = await open_queue(archive=WEEK)
    await queue.append([event("old-dest", message_id=f"m{i}") for i in range(5)])
    span = await queue.archive_span(ALL)
    assert span.events == 5 and span.first_seq is not None and span.last_seq is not None
    await queue.create_replay(replay(span.first_seq, span.last_seq))
    seqs = [e.seq for e in await queue.archived(ALL, span.first_seq - 1, span.last_seq, 3)]

    assert await queue.enqueue_replay("rp_1", span.first_seq - 1, seqs[-1], seqs[:2], skipped=1)
    assert not await queue.enqueue_replay("rp_1", span.first_seq - 1, seqs[-1], seqs[:2], skipped=1)  # moved on
    jobs = await queue.claim("new-dest", 10, 30.0)
    assert [(j.message_id, j.replay) for j in jobs] == [("m0", "rp_1"), ("m1", "rp_1")]
    record = await queue.replay("rp_1")
    assert record is not None and (record.cursor, record.enqueued, record.skipped) == (seqs[-1], 2, 1)
    assert (await queue.replay_waiting("rp_1"), await queue.replay_dead("rp_1")) == (2, 0)
    assert [j.replay for j in await queue.claim("old-dest", 10, 30.0)] == [None] * 5  # live jobs unmarked


async def test_cancelling_a_replay_removes_its_unsettled_jobs(open_queue: OpenQueue) -> None:
    queue = await open_queue(archive=WEEK)
    await queue.append([event("old-dest", message_id=f"m{i}") for i in range(4)])
    span = await queue.archive_span(ALL)
    assert span.first_seq is not None and span.last_seq is not None
    await queue.create_replay(replay(span.first_seq, span.last_seq))
    seqs = [e.seq for e in await queue.archived(ALL, 0, span.last_seq, 10)]
    await queue.enqueue_replay("rp_1", span.first_seq - 1, span.last_seq, seqs, 0)
    (in_flight,) = await queue.claim("new-dest", 1, 30.0)

    assert await queue.end_replay("rp_1", "cancelled") == 4
    assert await queue.depth("new-dest") == 0 and await queue.claim("new-dest", 10, 30.0) == []
    await queue.ack(in_flight)  # the attempt under way ends: settling it changes nothing
    assert await queue.depth("new-dest") == 0
    record = await queue.replay("rp_1")
    assert record is not None and record.state == "cancelled" and record.finished_at is not None
    assert not await queue.enqueue_replay("rp_1", span.last_seq, span.last_seq, [], 0)


async def test_a_file_from_before_the_archive_is_opened_and_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    queue = SQLiteQueue(path)
    await queue.start()
    await queue.append([event(message_id="before")])
    await queue.close()
    conn = sqlite3.connect(path)  # back to layout 4: no archive tables, no jobs.replay
    for table in ("archive", "archive_meta", "replays"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DROP INDEX jobs_replay")
    conn.execute("ALTER TABLE jobs DROP COLUMN replay")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()

    queue = SQLiteQueue(path, archive=WEEK)
    await queue.start()
    try:
        (job,) = await queue.claim("lambda", 10, 30.0)
        assert (job.message_id, job.replay) == ("before", None)
        await queue.append([event(message_id="after")])
        assert [e.message_id for e in await queue.archived(ALL, 0, 10**9, 10)] == ["after"]
    finally:
        await queue.close()
