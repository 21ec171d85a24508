"""The queue's archive, on every backend that keeps one (SQLite, JetStream on a real nats-server):
every accepted event once, in receipt order, kept after delivery within its limits; and the
replay operations that enqueue archived events as new jobs."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eventrelay.core.records import Accepted
from eventrelay.queue.archive import ArchiveLimits, ArchiveQueue, ReplayRecord, Window
from eventrelay.queue.sqlite import SQLiteQueue
from eventrelay.queue.sqlite.archive_store import PRUNE_INTERVAL, archived_size
from tests.queue.conftest import BODY, event

WEEK = ArchiveLimits(7 * 86400.0, 10**8)  # JetStream reserves max_bytes of its storage per stream: keep it small
ALL = Window(0.0, 1e12)
GONE_WITHIN = 10.0  # seconds for JetStream to remove messages past max_age (it checks on a timer)


@dataclass
class Archives:
    """Opens archive queues of one backend on one store (opening again reaches the same data)."""

    backend: str
    tmp_path: Path
    request: pytest.FixtureRequest
    opened: list[ArchiveQueue] = field(default_factory=list)

    async def open(self, archive: ArchiveLimits | None) -> ArchiveQueue:
        queue: ArchiveQueue
        if self.backend == "sqlite":
            queue = SQLiteQueue(self.tmp_path / "queue.db", dedup_window=3600.0, archive=archive)
        else:
            from eventrelay.queue.jetstream import JetStreamQueue
            from tests.jetstream.natsserver import shared_server_url

            url = await shared_server_url(self.request)
            stream = "A" + hashlib.sha1(str(self.tmp_path).encode()).hexdigest()[:12].upper()
            queue = JetStreamQueue([url], stream, 1, 1_000_000, 3600.0, archive=archive)
        await queue.start()
        self.opened.append(queue)
        return queue

    async def close(self, queue: ArchiveQueue) -> None:
        self.opened.remove(queue)
        await queue.close()


@pytest.fixture(params=["sqlite", "jetstream"])
async def archives(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Archives]:
    opened = Archives(request.param, tmp_path, request)
    yield opened
    for queue in opened.opened:
        await queue.close()


def replay(queue_span_first: int | None, last: int | None, *, limit: int = 10, rid: str = "rp_1") -> ReplayRecord:
    return ReplayRecord(
        id=rid, destination="new-dest", window=ALL, event=None, where=None, limit=limit,
        first_seq=queue_span_first, last_seq=last, matched=0, cursor=(queue_span_first or 1) - 1,
        enqueued=0, skipped=0, state="running", created_at=time.time(),
    )  # fmt: skip


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def test_every_new_event_is_archived_once_in_receipt_order_and_kept_after_delivery(
    archives: Archives,
) -> None:
    queue = await archives.open(WEEK)
    first = [event("a", "b", message_id="m1"), event(message_id="m2"), event("a", "b", message_id="m1")]  # m1 twice
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
    if archives.backend == "sqlite":
        assert info.bytes == sum(archived_size(e) for e in (first[0], first[1], unrouted))
    else:  # the stream's own accounting: bodies, headers, subjects
        assert info.bytes > sum(len(e.body) for e in (first[0], first[1], unrouted))
    assert info.oldest is not None and info.oldest <= archived[-1].received_at
    assert await queue.depth() == 0


async def test_without_an_archive_nothing_is_kept(archives: Archives) -> None:
    queue = await archives.open(None)
    await queue.append([event()])
    info = await queue.archive_info()
    assert (info.enabled, info.events, info.bytes) == (False, 0, 0)
    assert await queue.archived(ALL, 0, 10**9, 10) == []


async def test_events_past_retention_are_removed_and_the_archive_says_until_when(archives: Archives) -> None:
    queue = await archives.open(ArchiveLimits(retention=1.0, max_bytes=10**7))
    old = [Accepted(f"old{i}", "web", "track", time.time() - 5, BODY, ("a",)) for i in range(3)]
    await queue.append(old)  # SQLite ages by receivedAt, JetStream by the time it stored them
    await asyncio.sleep(PRUNE_INTERVAL + 1.1)
    new = event("a", message_id="new")
    await queue.append([new])  # a write transaction runs SQLite's prune step

    async def only_new() -> bool:
        return [e.message_id for e in await queue.archived(ALL, 0, 10**9, 10)] == ["new"]

    assert await eventually(only_new, GONE_WITHIN)
    info = await queue.archive_info()
    assert info.events == 1 and info.pruned_until is not None
    if archives.backend == "sqlite":
        assert info.pruned_until == old[-1].received_at
    else:  # JetStream does not say what it removed: an upper bound, before what is kept
        assert old[-1].received_at <= info.pruned_until < new.received_at
    assert await queue.depth("a") == 4  # the archive's retention never touches waiting jobs


async def test_beyond_max_bytes_the_oldest_events_go_first_and_no_waiting_job_is_dropped(
    archives: Archives,
) -> None:
    queue = await archives.open(WEEK)
    await queue.append([event(message_id="p" * 36)])
    size = (await queue.archive_info()).bytes  # one event as the backend counts it
    await archives.close(queue)
    # opened again with a smaller limit (JetStream: the stream is updated): 10 events fit, not 11
    limit = size * 21 // 2
    queue = await archives.open(ArchiveLimits(retention=86400.0, max_bytes=limit))
    for i in range(15):
        await queue.append([event(message_id=f"{i:036d}")])
    info = await queue.archive_info()
    kept = [int(e.message_id) for e in await queue.archived(ALL, 0, 10**9, 100)]
    assert kept == list(range(5, 15)) and info.bytes <= limit and info.events == 10
    assert info.pruned_until is not None and info.oldest is not None and info.pruned_until <= info.oldest
    assert await queue.depth("lambda") == 16  # every job still waits: the archive's limit is its own
    assert len(await queue.claim("lambda", 100, 30.0)) == 16


async def test_a_window_takes_events_by_receipt_time_source_and_type_and_pages_by_seq(archives: Archives) -> None:
    queue = await archives.open(WEEK)
    now = time.time()
    items = [
        Accepted(f"e{i}", "ios" if i % 2 else "web", "identify" if i % 3 == 0 else "track", now - 30 + i, BODY, ("a",))
        for i in range(30)
    ]
    await queue.append(items)
    window = Window(now - 20, now - 10, source="web", call_type="track")  # e10..e20, even, not a multiple of 3
    span = await queue.archive_span(window)
    expected = [f"e{i}" for i in range(10, 21) if i % 2 == 0 and i % 3]
    assert span.events == len(expected) and span.first_seq is not None and span.last_seq is not None
    page = await queue.archived(window, span.first_seq - 1, span.last_seq, 2)
    rest = await queue.archived(window, page[-1].seq, span.last_seq, 100)
    assert [e.message_id for e in page + rest] == expected
    assert await queue.archived(window, span.first_seq - 1, span.first_seq, 100) == page[:1]  # last_seq is kept
    assert (await queue.archive_span(Window(now + 10, now + 20))).events == 0


async def test_a_replay_enqueues_archived_events_as_marked_jobs_and_moves_its_cursor_once(
    archives: Archives,
) -> None:
    queue = await archives.open(WEEK)
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


async def test_cancelling_a_replay_removes_its_unsettled_jobs(archives: Archives) -> None:
    queue = await archives.open(WEEK)
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


async def test_a_replays_jobs_count_until_settled_and_its_dead_letters_apart(archives: Archives) -> None:
    queue = await archives.open(WEEK)
    await queue.append([event("old-dest", message_id=f"m{i}") for i in range(3)])
    span = await queue.archive_span(ALL)
    assert span.first_seq is not None and span.last_seq is not None
    await queue.create_replay(replay(span.first_seq, span.last_seq))
    seqs = [e.seq for e in await queue.archived(ALL, 0, span.last_seq, 10)]
    assert await queue.enqueue_replay("rp_1", span.first_seq - 1, span.last_seq, seqs, 0)
    delivered, failed, later = await queue.claim("new-dest", 10, 30.0)

    await queue.ack(delivered)
    await queue.dead_letter(failed, "failed", "boom")
    await queue.retry(later, time.time() + 3600)
    assert (await queue.replay_waiting("rp_1"), await queue.replay_dead("rp_1")) == (1, 1)
    assert await queue.redrive("new-dest") == 2  # the dead one and the one waiting for a retry, due now
    assert (await queue.replay_waiting("rp_1"), await queue.replay_dead("rp_1")) == (2, 0)
    jobs = await queue.claim("new-dest", 10, 30.0)
    assert sorted((j.message_id, j.replay) for j in jobs) == [("m1", "rp_1"), ("m2", "rp_1")]
    for job in jobs:
        await queue.ack(job)
    assert (await queue.replay_waiting("rp_1"), await queue.depth("new-dest")) == (0, 0)


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
