"""``SQLiteQueue``: the ``Queue`` calls as operations for the writer thread (see __init__.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from eventrelay.core.errors import StorageError
from eventrelay.core.records import Accepted, DeadStatus, Job
from eventrelay.queue.archive import ArchivedEvent, ArchiveInfo, ArchiveLimits, ReplayRecord, ReplayState, Span, Window
from eventrelay.queue.base import BlockedLane
from eventrelay.queue.sqlite.archive_reads import ArchiveReader
from eventrelay.queue.sqlite.archive_store import CreateReplay, EndReplay, EnqueueReplay
from eventrelay.queue.sqlite.lanes import BlockedLanes, SetOrdering
from eventrelay.queue.sqlite.ops import (
    Ack,
    Append,
    AppendHandoff,
    Claim,
    DeadLetter,
    Extend,
    Op,
    Redrive,
    Retry,
    SetMaxPages,
)
from eventrelay.queue.sqlite.schema import WAL_BYTES
from eventrelay.queue.sqlite.store import Store
from eventrelay.storage.space import Space
from eventrelay.storage.sqlite_writer import GroupCommitWriter
from eventrelay.storage.write_turns import WriteTurns

# Rows (events appended, jobs claimed, other calls) per transaction at most. A transaction of
# a few thousand rows already makes the fsync a small share of its cost; beyond that a bigger
# one saves little and makes every caller sharing it wait longer, while smaller ones let the
# event loop work on the next requests while the writer commits.
MAX_BATCH_ROWS = 1_000


class SQLiteQueue:
    """``Queue`` (also ``GroupCommitQueue``, ``HandoffQueue``, ``ArchiveQueue`` and ``OrderedQueue``)
    on a SQLite file. ``commits`` counts committed transactions (group commit ratio: compare with
    ``operations``). ``archive``: how long and how much of the accepted events to keep after
    delivery (None: none). ``shared``: one of several processes on the file (``serve
    --workers``; see ``Store``)."""

    def __init__(
        self,
        path: Path,
        *,
        max_events: int = 1_000_000,
        dedup_window: float = 86400.0,
        archive: ArchiveLimits | None = None,
        shared: bool = False,
        space: Space | None = None,
    ) -> None:
        """``space``: the data directory's free space (``storage/space.py``): new events are
        refused under its floor and the WAL is kept small on a nearly full disk."""
        self.path = Path(path)
        self.max_events = max_events
        self.dedup_window = dedup_window
        self._ready: Counter[str] = Counter()  # waiting (not dead) jobs per destination, committed
        self._archive = ArchiveReader(self.path, archive)
        self._ordered: frozenset[str] = frozenset()  # as the writer's Store has it (lanes.py)
        self._writer: GroupCommitWriter[Op, Counter[str]] = GroupCommitWriter(
            Store(
                self.path,
                max_events=max_events,
                dedup_window=dedup_window,
                archive=archive,
                shared=shared,
                space=space,
            ),
            what=f"the queue database {self.path}",
            thread_name="eventrelay-sqlite",
            max_rows=MAX_BATCH_ROWS,
            on_commit=self._ready.update,
            deferrable=_is_plain_append,
            turns=WriteTurns(self.path),
            path=self.path,
            space=space,
            wal_bytes=WAL_BYTES,
        )
        self._submit = self._writer.submit

    @property
    def commits(self) -> int:
        """Transactions committed since start."""
        return self._writer.commits

    @property
    def operations(self) -> int:
        """Queue calls carried by those transactions."""
        return self._writer.operations

    async def start(self) -> None:
        await self._writer.start()  # the file and its tables exist from here on
        self._archive.start()

    async def close(self) -> None:
        await self._archive.close()
        await self._writer.close()

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
        await self._submit(Ack(_job_id(job), _lane(job)))

    async def retry(self, job: Job, due_at: float) -> None:
        await self._submit(Retry(_job_id(job), due_at, job.batch))

    async def postpone(self, job: Job, due_at: float) -> None:
        await self._submit(Retry(_job_id(job), due_at, job.batch, counted=False))

    async def dead_letter(self, job: Job, status: DeadStatus, reason: str) -> None:
        await self._submit(DeadLetter(_job_id(job), status, reason, _lane(job)))

    # Settles without a coroutine: the future of the commit carrying the call (the delivery
    # settler issues a whole batch of these in one loop iteration; one commit takes them all).
    def ack_nowait(self, job: Job) -> asyncio.Future[None]:
        return self._submit(Ack(_job_id(job), _lane(job)))

    def retry_nowait(self, job: Job, due_at: float) -> asyncio.Future[None]:
        return self._submit(Retry(_job_id(job), due_at, job.batch))

    def postpone_nowait(self, job: Job, due_at: float) -> asyncio.Future[None]:
        return self._submit(Retry(_job_id(job), due_at, job.batch, counted=False))

    def dead_letter_nowait(self, job: Job, status: DeadStatus, reason: str) -> asyncio.Future[None]:
        return self._submit(DeadLetter(_job_id(job), status, reason, _lane(job)))

    async def redrive(self, destination: str, message_ids: Sequence[str] | None = None) -> int:
        moved: int = await self._submit(Redrive(destination, message_ids))
        return moved

    async def depth(self, destination: str | None = None) -> int:
        if destination is None:
            return sum(self._ready.values())
        return self._ready[destination]

    async def order_lanes(self, destinations: Collection[str]) -> None:
        """Claim only lane heads for ``destinations`` from now on (``lanes.py``)."""
        self._ordered = frozenset(destinations)
        await self._submit(SetOrdering(self._ordered))

    def orders(self, destination: str) -> bool:
        return destination in self._ordered

    async def blocked_lanes(self, destination: str, limit: int) -> list[BlockedLane]:
        lanes: list[BlockedLane] = await self._submit(BlockedLanes(destination, limit))
        return lanes

    async def limit_pages(self, max_pages: int) -> int:
        """Cap the database file at ``max_pages`` pages (``PRAGMA max_page_count``; returns the
        cap in force, never below the current size). Writes beyond it fail as on a full disk:
        a size bound for operators, and a full disk for tests."""
        pages: int = await self._submit(SetMaxPages(max_pages))
        return pages

    # -- the archive and replays (queue/archive.py) ---------------------------------------------
    async def archive_info(self) -> ArchiveInfo:
        return await self._archive.info()

    async def archive_span(self, window: Window) -> Span:
        return await self._archive.span(window)

    async def archived(self, window: Window, after_seq: int, last_seq: int, limit: int) -> list[ArchivedEvent]:
        return await self._archive.archived(window, after_seq, last_seq, limit)

    async def create_replay(self, replay: ReplayRecord) -> None:
        await self._submit(CreateReplay(replay))

    async def replays(self, destination: str | None = None) -> list[ReplayRecord]:
        return await self._archive.replays(destination)

    async def replay(self, replay_id: str) -> ReplayRecord | None:
        return await self._archive.replay(replay_id)

    async def enqueue_replay(
        self, replay_id: str, cursor: int, new_cursor: int, seqs: Sequence[int], skipped: int
    ) -> bool:
        done: bool = await self._submit(EnqueueReplay(replay_id, cursor, new_cursor, seqs, skipped))
        return done

    async def replay_waiting(self, replay_id: str) -> int:
        return await self._archive.jobs(replay_id, "ready")

    async def replay_dead(self, replay_id: str) -> int:
        return await self._archive.jobs(replay_id, "dead")

    async def end_replay(self, replay_id: str, state: ReplayState) -> int:
        removed: int = await self._submit(EndReplay(replay_id, state))
        return removed


def _lane(job: Job) -> tuple[str, str] | None:
    return None if job.lane is None else (job.destination, job.lane)


def _job_id(job: Job) -> int:
    try:
        return int(job.handle)
    except ValueError as exc:
        raise StorageError(f"{job.handle!r} is not a handle of the SQLite queue") from exc


def _is_plain_append(op: Op) -> bool:
    """Appends without a hand-off may wait behind delivery's claims, acks and hand-offs in the
    writer's next transaction (``GroupCommitWriter``'s ``deferrable``): they only answer ingest,
    while those hold delivery slots."""
    return type(op) is Append
