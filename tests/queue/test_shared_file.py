"""Several queues on one file (``serve --workers``: one per worker process): dedup, the
``max_events`` bound and ``depth`` hold for the deployment, and a shared open keeps the leases
of the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eventrelay.core.errors import QueueFull
from eventrelay.queue.sqlite import SQLiteQueue
from tests.queue.conftest import event

LEASE = 60.0


async def _open(path: Path, *, shared: bool, max_events: int = 1_000_000) -> SQLiteQueue:
    queue = SQLiteQueue(path, max_events=max_events, shared=shared)
    await queue.start()
    return queue


async def test_the_same_message_id_from_two_workers_at_once_is_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    await (await _open(path, shared=False)).close()
    first, second = await _open(path, shared=True), await _open(path, shared=True)
    try:
        for _ in range(20):
            same = event().message_id
            results = await asyncio.gather(
                first.append([event(message_id=same)]), second.append([event(message_id=same)])
            )
            assert sorted(flags[0] for flags in results) == [False, True]
        assert len(await first.claim("lambda", 100, LEASE)) + len(await second.claim("lambda", 100, LEASE)) == 20
    finally:
        await first.close()
        await second.close()


async def test_depth_and_max_events_count_every_worker(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    await (await _open(path, shared=False)).close()
    first, second = await _open(path, shared=True, max_events=10), await _open(path, shared=True, max_events=10)
    try:
        await first.append([event() for _ in range(6)])
        with pytest.raises(QueueFull):
            await second.append([event() for _ in range(6)])  # 6 + 6 > 10 though this worker added none
        for job in await second.claim("lambda", 4, LEASE):
            await second.ack(job)  # another worker's events settled here
        await first.append([event() for _ in range(6)])  # room again: 2 + 6 <= 10
        assert await first.depth("lambda") == 8
        assert len(await second.claim("lambda", 1, LEASE)) == 1  # any commit refreshes a worker's view
        assert await second.depth("lambda") == 8
    finally:
        await first.close()
        await second.close()


async def test_a_shared_open_keeps_the_leases_of_live_workers(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    await (await _open(path, shared=False)).close()
    first = await _open(path, shared=True)
    try:
        await first.append([event() for _ in range(5)])
        assert len(await first.claim("lambda", 5, LEASE)) == 5
        restarted = await _open(path, shared=True)  # a worker restarted beside a live one
        try:
            assert await restarted.claim("lambda", 5, LEASE) == []
        finally:
            await restarted.close()
    finally:
        await first.close()
    fresh = await _open(path, shared=False)  # the whole deployment restarted: leases released
    try:
        assert len(await fresh.claim("lambda", 5, LEASE)) == 5
        assert await fresh.depth("lambda") == 5
    finally:
        await fresh.close()
