"""The archive interface: accepted events kept after delivery, and replays of them as new jobs.

A backend that keeps an archive (``ArchiveQueue``) stores every accepted event once, in receipt
order (``seq``), for ``archive.retention`` or up to ``archive.max_bytes``, the oldest going first.
Reads (``archive_info``, ``archived``, ``archive_span``) never block ingest or delivery.

A replay (``ReplayRecord``) re-sends a window of the archive into one destination as new jobs
marked with the replay's id. Its cursor (the last archived ``seq`` it has considered) moves in the
same commit as the jobs it enqueues (``enqueue_replay``), so a replay resumed after a crash sends
nothing twice and skips nothing. The selection logic (filters, routing, the share of concurrency)
lives in ``delivery/replay.py``; this is what it needs from storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from eventrelay.queue.base import Queue

ReplayState = Literal["running", "done", "cancelled"]


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """How long and how much the archive keeps (``archive:`` of the configuration)."""

    retention: float  # seconds after receipt
    max_bytes: int


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """What the archive holds now. ``pruned_until``: receipt time of the newest event removed by
    retention or size (None: none removed yet)."""

    enabled: bool
    events: int
    bytes: int
    oldest: float | None  # receivedAt of the oldest event kept
    newest: float | None
    retention: float  # seconds
    max_bytes: int
    pruned_until: float | None = None


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    seq: int  # receipt order
    message_id: str
    source: str
    call_type: str
    received_at: float
    body: bytes


@dataclass(frozen=True, slots=True)
class Window:
    """Archived events received in ``[since, until]``, optionally of one source and call type."""

    since: float
    until: float
    source: str | None = None
    call_type: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """The archive's events of a window: ``seq`` range (inclusive) and how many (before any
    filter that needs the body)."""

    first_seq: int | None
    last_seq: int | None
    events: int


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """One replay as stored. ``where`` and ``event`` are the selection ``delivery/replay.py``
    applies to each event's body; ``limit``: the replay's jobs waiting or in flight at most."""

    id: str
    destination: str
    window: Window
    event: str | None
    where: str | None
    limit: int
    first_seq: int | None
    last_seq: int | None
    matched: int  # events the dry count found when the replay was made
    cursor: int  # the last seq considered (enqueued or skipped); first_seq - 1 before any
    enqueued: int
    skipped: int  # considered but not matching (event, where, routing)
    state: ReplayState
    created_at: float
    finished_at: float | None = None


@runtime_checkable
class ArchiveQueue(Queue, Protocol):
    """A queue that archives accepted events and enqueues replays of them."""

    async def archive_info(self) -> ArchiveInfo: ...

    async def archive_span(self, window: Window) -> Span:
        """The seq range and count of the archived events of ``window``."""
        ...

    async def archived(self, window: Window, after_seq: int, last_seq: int, limit: int) -> list[ArchivedEvent]:
        """Up to ``limit`` archived events of ``window`` with ``after_seq < seq <= last_seq``, in
        receipt order."""
        ...

    async def create_replay(self, replay: ReplayRecord) -> None: ...

    async def replays(self, destination: str | None = None) -> list[ReplayRecord]:
        """Every replay (of ``destination``), newest first."""
        ...

    async def replay(self, replay_id: str) -> ReplayRecord | None: ...

    async def enqueue_replay(
        self, replay_id: str, cursor: int, new_cursor: int, seqs: Sequence[int], skipped: int
    ) -> bool:
        """In one commit: a job of the replay's destination for each archived event ``seqs``
        (marked with ``replay_id``), and the cursor moved from ``cursor`` to ``new_cursor``.
        False (nothing done) when the replay is not running at ``cursor`` any more."""
        ...

    async def replay_waiting(self, replay_id: str) -> int:
        """The replay's jobs waiting or in flight (a read of at most its ``limit`` index entries)."""
        ...

    async def replay_dead(self, replay_id: str) -> int:
        """The replay's dead-lettered jobs."""
        ...

    async def end_replay(self, replay_id: str, state: ReplayState) -> int:
        """Mark the replay ``done`` or ``cancelled``; cancelling removes its jobs not yet settled
        (an attempt under way still ends). Returns how many jobs were removed."""
        ...
