"""Fixtures of the SQLite queue tests: queues on a test directory, closed at the end."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from eventrelay.core.records import Accepted
from eventrelay.queue.archive import ArchiveLimits
from eventrelay.queue.sqlite import SQLiteQueue

BODY = b'{"type":"track","event":"Order Completed","properties":{"pad":"' + b"x" * 1100 + b'"}}'  # ~1.2 KB

OpenQueue = Callable[..., Awaitable[SQLiteQueue]]


def event(*destinations: str, message_id: str | None = None) -> Accepted:
    return Accepted(message_id or str(uuid.uuid4()), "web", "track", time.time(), BODY, destinations or ("lambda",))


@pytest.fixture
async def open_queue(tmp_path: Path) -> AsyncIterator[OpenQueue]:
    """``await open_queue(path=..., max_events=..., dedup_window=..., archive=...)``: a started SQLiteQueue."""
    opened: list[SQLiteQueue] = []

    async def _open(
        path: Path | None = None,
        *,
        max_events: int = 1_000_000,
        dedup_window: float = 3600.0,
        archive: ArchiveLimits | None = None,
    ) -> SQLiteQueue:
        queue = SQLiteQueue(
            path or tmp_path / "queue.db", max_events=max_events, dedup_window=dedup_window, archive=archive
        )
        await queue.start()
        opened.append(queue)
        return queue

    yield _open
    for queue in opened:
        await queue.close()
