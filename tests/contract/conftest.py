"""Fixtures of the queue contract suite: every backend in ``BACKENDS`` runs every test.

To add a backend, add one entry: a name -> ``Backend(open=..., durable=...)``. ``open`` gets a
``Setting`` (the test's directory, the bounds, and the pytest request, so it can use
session fixtures such as a server) and returns a queue that is NOT yet started. Opening twice
with the same setting must reach the same stored data (used by the close/reopen test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eventrelay.queue.base import Queue
from eventrelay.queue.memory import MemoryQueue
from eventrelay.queue.sqlite import SQLiteQueue

DEFAULT_MAX_EVENTS = 1_000
DEFAULT_DEDUP_WINDOW = 3600.0


@dataclass(frozen=True)
class Setting:
    tmp_path: Path
    request: pytest.FixtureRequest
    max_events: int = DEFAULT_MAX_EVENTS
    dedup_window: float = DEFAULT_DEDUP_WINDOW


@dataclass(frozen=True)
class Backend:
    open: Callable[[Setting], Awaitable[Queue]]
    durable: bool  # close + open again keeps unsettled jobs and the dedup memory


async def _memory(setting: Setting) -> Queue:
    return MemoryQueue(max_events=setting.max_events, dedup_window=setting.dedup_window)


async def _sqlite(setting: Setting) -> Queue:
    return SQLiteQueue(setting.tmp_path / "queue.db", max_events=setting.max_events, dedup_window=setting.dedup_window)


async def _jetstream(setting: Setting) -> Queue:
    from tests.jetstream.contract_backend import open_jetstream  # a real nats-server, one per session

    return await open_jetstream(setting)


BACKENDS: dict[str, Backend] = {
    "memory": Backend(open=_memory, durable=False),
    "sqlite": Backend(open=_sqlite, durable=True),
    "jetstream": Backend(open=_jetstream, durable=True),
}


@dataclass
class Queues:
    """Opens queues of one backend for a test and closes whatever is still open at the end."""

    name: str
    backend: Backend
    tmp_path: Path
    request: pytest.FixtureRequest
    opened: list[Queue] = field(default_factory=list)

    async def open(self, *, max_events: int = DEFAULT_MAX_EVENTS, dedup_window: float = DEFAULT_DEDUP_WINDOW) -> Queue:
        queue = await self.backend.open(Setting(self.tmp_path, self.request, max_events, dedup_window))
        await queue.start()
        self.opened.append(queue)
        return queue

    async def close(self, queue: Queue) -> None:
        self.opened.remove(queue)
        await queue.close()


@pytest.fixture(params=list(BACKENDS))
async def queues(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Queues]:
    opener = Queues(request.param, BACKENDS[request.param], tmp_path, request)
    yield opener
    for queue in list(opener.opened):
        await opener.close(queue)


@pytest.fixture
async def queue(queues: Queues) -> Queue:
    return await queues.open()


@pytest.fixture(params=[name for name, backend in BACKENDS.items() if backend.durable])
async def durable_queues(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Queues]:
    """Like ``queues``, only for the backends that keep data across close and open."""
    opener = Queues(request.param, BACKENDS[request.param], tmp_path, request)
    yield opener
    for queue in list(opener.opened):
        await opener.close(queue)
