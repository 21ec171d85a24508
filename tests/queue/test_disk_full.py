"""A full disk: append raises DiskFull, nothing committed is lost, and the queue recovers.

Two ways to fill it: a real 2 MB tmpfs (needs mount rights: root in the CI container) and
SQLite's own page cap (``PRAGMA max_page_count`` via ``limit_pages``), which returns the same
SQLITE_FULL on any machine. With the data directory's free-space floor (``storage/space.py``)
new events are refused before the disk is full, and the room delivery frees takes them again.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventrelay.core.errors import DiskFull
from eventrelay.queue.archive import ArchiveLimits
from eventrelay.queue.sqlite import SQLiteQueue
from eventrelay.storage.space import Space
from tests.queue.conftest import OpenQueue, event

BATCH = 20
MAX_BATCHES = 2_000  # far more than 2 MB holds: the loop ends on DiskFull, never runs away


async def fill(queue: SQLiteQueue) -> tuple[list[str], DiskFull]:
    """Append until the disk refuses; return the ids acknowledged before that, and the error."""
    stored: list[str] = []
    for _ in range(MAX_BATCHES):
        items = [event() for _ in range(BATCH)]
        try:
            await queue.append(items)
        except DiskFull as refused:
            return stored, refused
        stored += [item.message_id for item in items]
    raise AssertionError(f"{len(stored)} events appended and the disk never filled")


async def all_ids(queue: SQLiteQueue) -> set[str]:
    found: set[str] = set()
    while jobs := await queue.claim("lambda", 5_000, 60.0):
        found.update(job.message_id for job in jobs)
    return found


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); test_page_cap covers SQLITE_FULL")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


async def test_full_filesystem_refuses_appends_keeps_data_and_recovers(open_queue: OpenQueue, small_disk: Path) -> None:
    ballast = small_disk / "other-program.dat"
    ballast.write_bytes(b"\0" * 1024 * 1024)  # another program's file; deleting it frees space
    queue = await open_queue(small_disk / "queue.db")

    stored, refused = await fill(queue)
    assert len(stored) > 100
    assert "disk is full" in str(refused) and refused.retry_after > 0

    ballast.unlink()
    after = event()
    assert await queue.append([after]) == [True]  # space returned: accepted again
    await queue.close()

    reopened = await open_queue(small_disk / "queue.db")
    assert await all_ids(reopened) == {*stored, after.message_id}


async def test_page_cap_refuses_appends_keeps_data_and_recovers(open_queue: OpenQueue, tmp_path: Path) -> None:
    queue = await open_queue()
    await queue.append([event() for _ in range(BATCH)])
    pages = (tmp_path / "queue.db").stat().st_size // 4096
    await queue.limit_pages(pages + 40)

    stored, refused = await fill(queue)
    assert len(stored) > 0
    assert "queue.db" in str(refused)
    acked_before = await all_ids(queue)  # claims (writes too) still fit while appends no longer do
    assert set(stored) <= acked_before

    await queue.limit_pages(1_000_000)
    after = event()
    assert await queue.append([after]) == [True]
    await queue.close()

    reopened = await open_queue()
    assert {*stored, after.message_id} <= await all_ids(reopened)
    assert await reopened.depth() == BATCH + len(stored) + 1


async def test_a_refused_append_does_not_fail_the_acks_handed_over_with_it(
    open_queue: OpenQueue, tmp_path: Path
) -> None:
    queue = await open_queue()
    await queue.append([event() for _ in range(10)])
    jobs = await queue.claim("lambda", 5, 60.0)
    await queue.limit_pages(1)  # no growth at all from here (the cap never goes below the current size)
    commits = queue.commits

    outcomes = await asyncio.gather(
        queue.append([event() for _ in range(200)]), *(queue.ack(job) for job in jobs), return_exceptions=True
    )

    assert isinstance(outcomes[0], DiskFull)
    assert outcomes[1:] == [None] * 5
    # the acks commit first, in a transaction of their own (appends are the writer's deferrable
    # calls); the full disk then refuses the append alone
    assert queue.commits - commits == 1
    assert await queue.depth() == 5


async def test_the_free_space_floor_refuses_events_first_and_freed_pages_take_them_again(small_disk: Path) -> None:
    floor = 1024 * 1024  # half of the 2 MB tmpfs
    queue = SQLiteQueue(small_disk / "queue.db", space=Space(small_disk, floor=floor))
    await queue.start()
    try:
        stored, refused = await fill(queue)
        assert "storage.min_free_space" in str(refused)  # the floor refused, not the disk
        wal = small_disk / "queue.db-wal"
        assert wal.stat().st_size <= Space(small_disk, floor=floor).free()  # the WAL never outgrew the room
        jobs = await queue.claim("lambda", 5_000, 60.0)  # delivery goes on under the floor
        await asyncio.gather(*(queue.ack(job) for job in jobs[: len(jobs) // 2]))

        after = [event() for _ in range(BATCH)]  # no new disk space: the freed pages take them
        assert await queue.append(after) == [True] * BATCH
    finally:
        await queue.close()
    reopened = SQLiteQueue(small_disk / "queue.db")
    await reopened.start()
    try:
        remaining = await all_ids(reopened)
    finally:
        await reopened.close()
    assert {m.message_id for m in after} <= remaining and len(remaining) == len(stored) - len(jobs) // 2 + BATCH


async def test_under_the_floor_the_archive_gives_way_to_new_events(small_disk: Path) -> None:
    floor = 1024 * 1024
    archive = ArchiveLimits(retention=7 * 86400.0, max_bytes=1 << 40)  # no bound of its own here
    queue = SQLiteQueue(small_disk / "queue.db", space=Space(small_disk, floor=floor), archive=archive)
    await queue.start()
    try:
        stored, _ = await fill(queue)
        jobs = await queue.claim("lambda", 5_000, 60.0)
        await asyncio.gather(*(queue.ack(job) for job in jobs))  # delivered: only the archive holds them now

        again, refused = await fill(queue)  # the freed job pages, then the archive's oldest events
        assert "storage.min_free_space" in str(refused)
    finally:
        await queue.close()
    assert len(jobs) == len(stored)
    # an event takes a job row and an archive row: without the archive giving way only the job
    # rows' pages would be free again, about half the room
    assert len(again) > 0.75 * len(stored), (len(again), len(stored))
