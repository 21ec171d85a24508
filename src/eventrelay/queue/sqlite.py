"""The embedded durable queue: one SQLite file (WAL, synchronous=FULL) with group commit.

Every call becomes an operation for one dedicated writer thread, which owns the only
connection. The calls made during one event-loop iteration are handed over together (one
``SimpleQueue.put``); the thread runs everything handed over by the time it is free in ONE
transaction and commits once: one fsync for the appends of many concurrent requests and the
acks of many workers. It never waits for the event loop between commits: while it commits, the
next calls gather, so batches grow with load and latency stays one commit when idle. Results go
back with one ``call_soon_threadsafe`` per transaction. The event loop never runs SQLite.

Guarantees and limits:

- ``append`` returns only after its transaction committed with ``synchronous=FULL``: an event
  acknowledged to a client survives kill -9 and power loss.
- Claims, acks, retries and dead letters commit without their own fsync (``synchronous=NORMAL``
  for a transaction with no append): they survive kill -9, and the next append's fsync makes
  them durable; a power loss in between can replay them (an event delivered twice, never lost).
- Single process: the counters that make ``depth`` and the ``max_events`` check O(1) live in
  memory (read from the file at ``start``), and ``start`` releases every lease (a crashed
  predecessor's claimed jobs are due at once). Do not run two eventrelay processes on one file.
- A claim moves a job's ``due_at`` to the end of its lease, so a claim is one range scan of the
  index (destination, state, due_at) with ``LIMIT``: a backlog of millions is never loaded.
- ``close`` flushes pending operations, checkpoints the WAL and closes the file; jobs claimed
  and not settled stay and are due again when their lease lapses (or at the next ``start``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from eventrelay.core.errors import StorageError
from eventrelay.core.records import Accepted, DeadStatus, Job
from eventrelay.queue.sqlite_ops import (
    Ack,
    Append,
    AppendHandoff,
    BatchResult,
    Claim,
    DeadLetter,
    Extend,
    Op,
    Redrive,
    Retry,
    SetMaxPages,
    Store,
)
from eventrelay.queue.sqlite_schema import translate

log = logging.getLogger(__name__)

# Rows (events appended, jobs claimed, other calls) per transaction at most. A transaction of
# a few thousand rows already makes the fsync a small share of its cost; beyond that a bigger
# one saves little and makes every caller sharing it wait longer, while smaller ones let the
# event loop work on the next requests while the writer commits.
MAX_BATCH_ROWS = 4_000

Pending = tuple[Op, "asyncio.Future[Any]"]


class SQLiteQueue:
    """``Queue`` on a SQLite file. ``commits`` counts committed transactions (group commit ratio:
    compare with ``operations``)."""

    def __init__(self, path: Path, *, max_events: int = 1_000_000, dedup_window: float = 86400.0) -> None:
        self.path = Path(path)
        self.max_events = max_events
        self.dedup_window = dedup_window
        self.commits = 0  # transactions committed since start
        self.operations = 0  # queue calls carried by those transactions
        self._store = Store(self.path, max_events=max_events, dedup_window=dedup_window)
        self._ready: Counter[str] = Counter()  # waiting (not dead) jobs per destination, committed
        self._gathering: list[Pending] = []  # calls of this loop iteration, not yet handed over
        self._inbox: SimpleQueue[list[Pending] | None] = SimpleQueue()  # None: stop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[BaseException | None] | None = None  # the error at close
        self._closing = False

    async def start(self) -> None:
        if self._thread is not None:
            return
        loop = self._loop = asyncio.get_running_loop()
        opened: asyncio.Future[Counter[str]] = loop.create_future()
        self._stopped = loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(opened,), name="eventrelay-sqlite", daemon=True)
        self._thread.start()
        try:
            self._ready = await opened
        except Exception as exc:
            self._thread = self._loop = None
            raise translate(exc, self.path) from exc

    async def close(self) -> None:
        if self._thread is None or self._closing or self._stopped is None:
            return
        self._closing = True
        self._hand_over()
        self._inbox.put(None)
        error = await self._stopped
        if error is not None:
            raise translate(error, self.path) from error

    async def append(self, items: Sequence[Accepted]) -> list[bool]:
        if not items:
            return []
        result: list[bool] = await self._submit(Append(items))
        return result

    def append_nowait(self, items: Sequence[Accepted]) -> asyncio.Future[list[bool]]:
        """``append`` without a coroutine: the future of the commit carrying it (the Tracking
        API's fast path answers from its completion callback)."""
        return self._submit(Append(items))

    def append_handoff(
        self, items: Sequence[Accepted], offers: Mapping[str, tuple[int, float]]
    ) -> asyncio.Future[tuple[list[bool], list[Job]]]:
        """``append_nowait``, with up to ``offers[destination][0]`` of the new jobs of each
        destination leased for ``offers[destination][1]`` seconds and returned with the fresh
        flags: the delivery workers that reserved room take them as soon as the append commits,
        without a claim (the commit they wait for is the append's own)."""
        return self._submit(AppendHandoff(items, offers))

    async def claim(self, destination: str, limit: int, lease_seconds: float) -> list[Job]:
        if limit <= 0:
            return []
        jobs: list[Job] = await self._submit(Claim(destination, limit, lease_seconds))
        return jobs

    async def extend(self, job: Job, lease_seconds: float) -> None:
        await self._submit(Extend(_job_id(job), lease_seconds))

    async def ack(self, job: Job) -> None:
        await self._submit(Ack(_job_id(job)))

    async def retry(self, job: Job, due_at: float) -> None:
        await self._submit(Retry(_job_id(job), due_at))

    async def dead_letter(self, job: Job, status: DeadStatus, reason: str) -> None:
        await self._submit(DeadLetter(_job_id(job), status, reason))

    # Settles without a coroutine: the future of the commit carrying the call (the delivery
    # settler issues a whole batch of these in one loop iteration; one commit takes them all).
    def ack_nowait(self, job: Job) -> asyncio.Future[None]:
        return self._submit(Ack(_job_id(job)))

    def retry_nowait(self, job: Job, due_at: float) -> asyncio.Future[None]:
        return self._submit(Retry(_job_id(job), due_at))

    def dead_letter_nowait(self, job: Job, status: DeadStatus, reason: str) -> asyncio.Future[None]:
        return self._submit(DeadLetter(_job_id(job), status, reason))

    async def redrive(self, destination: str, message_ids: Sequence[str] | None = None) -> int:
        moved: int = await self._submit(Redrive(destination, message_ids))
        return moved

    async def depth(self, destination: str | None = None) -> int:
        if destination is None:
            return sum(self._ready.values())
        return self._ready[destination]

    async def limit_pages(self, max_pages: int) -> int:
        """Cap the database file at ``max_pages`` pages (``PRAGMA max_page_count``; returns the
        cap in force, never below the current size). Writes beyond it fail as on a full disk:
        a size bound for operators, and a full disk for tests."""
        pages: int = await self._submit(SetMaxPages(max_pages))
        return pages

    def _submit(self, op: Op) -> asyncio.Future[Any]:
        """Queue ``op`` for the writer; the returned future settles once its transaction did."""
        loop = self._loop
        if loop is None or self._closing:
            state = "closed" if self._closing else "not started"
            raise StorageError(f"the queue {self.path} is {state}")
        future: asyncio.Future[Any] = loop.create_future()
        if not self._gathering:
            loop.call_soon(self._hand_over)  # after the other calls of this iteration
        self._gathering.append((op, future))
        return future

    def _hand_over(self) -> None:
        if self._gathering:
            self._inbox.put(self._gathering)
            self._gathering = []

    # The writer thread.

    def _run(self, opened: asyncio.Future[Counter[str]]) -> None:
        loop = self._loop
        assert loop is not None and self._stopped is not None
        try:
            counts = self._store.open()
        except Exception as exc:
            loop.call_soon_threadsafe(_resolve, opened, exc, None)
            return
        loop.call_soon_threadsafe(_resolve, opened, None, counts)
        committed_ready = sum(counts.values())
        carry: list[Pending] = []
        stopping = False
        while carry or not stopping:
            batch, carry, stopping = self._next_batch(carry, stopping)
            if not batch:
                continue
            ops = [op for op, _ in batch]
            try:
                result = self._store.run_batch(ops, committed_ready)
            except BaseException as exc:  # a bug in the writer, not an operation's failure
                log.exception("queue %s: the writer failed a batch", self.path)
                failure = StorageError(f"the queue {self.path} writer failed: {exc!r}")
                result = BatchResult([failure] * len(ops), Counter(), 0)
            committed_ready += sum(result.delta.values())
            _call(loop, self._settle, batch, result)
        error: BaseException | None = None
        try:
            self._store.close()
        except Exception as exc:
            error = exc
        _call(loop, _resolve, self._stopped, None, error)

    def _next_batch(self, carry: list[Pending], stopping: bool) -> tuple[list[Pending], list[Pending], bool]:
        """Up to ``MAX_BATCH_ROWS`` rows (at least one op) of what is handed over; blocks when
        there is nothing. Returns the batch, what did not fit, and whether to stop after."""
        batch = carry
        inbox = self._inbox
        if not batch and not stopping:
            first = inbox.get()
            if first is None:
                return [], [], True
            batch = first
        while not stopping and not inbox.empty():
            more = inbox.get_nowait()
            if more is None:
                stopping = True
            else:
                batch.extend(more)  # lists handed over belong to the writer from then on
        limit = MAX_BATCH_ROWS
        rows = 0
        for count, (op, _) in enumerate(batch):
            rows += op.rows
            if rows > limit and count > 0:
                return batch[:count], batch[count:], stopping
        return batch, [], stopping

    def _settle(self, batch: list[Pending], result: BatchResult) -> None:
        """On the loop: count what committed, then resolve each caller's future."""
        self._ready.update(result.delta)
        self.commits += result.commits
        self.operations += len(batch)
        for (_, future), outcome in zip(batch, result.outcomes, strict=True):
            if future.done():  # the caller was cancelled; its operation still ran
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def _call(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> None:
    """``call_soon_threadsafe`` that tolerates a loop already closed (nobody is waiting then)."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        log.debug("queue: event loop closed before a result could be delivered")


def _resolve(future: asyncio.Future[Any], error: BaseException | None, value: Any) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _job_id(job: Job) -> int:
    try:
        return int(job.handle)
    except ValueError as exc:
        raise StorageError(f"{job.handle!r} is not a handle of the SQLite queue") from exc
