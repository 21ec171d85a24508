"""The SQLite archive's writes, run by the queue's writer thread: its size accounting, retention
(bounded prune steps inside write transactions) and the replay operations.

Appends stage one archive row per new event (``ops.Append``), written with its jobs. A replay's
cursor moves in the same statement group as the jobs it enqueues (``EnqueueReplay``): one commit,
so after a crash the replay resumes exactly where its last commit left it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventrelay.core.records import Accepted
from eventrelay.queue.archive import ArchiveLimits, ReplayRecord, ReplayState
from eventrelay.queue.sqlite.tx import Tx, json_list

if TYPE_CHECKING:
    from eventrelay.queue.sqlite.store import Store

ARCHIVE_ROW_OVERHEAD = 48  # bytes per archived event beyond its body and ids: seq, times, size, b-tree cells
PRUNE_STEP = 5_000  # archived events removed per transaction at most: a few ms of the writer, never seconds
PRUNE_INTERVAL = 1.0  # seconds between retention checks (size is checked in every transaction that archives)

_META = "SELECT bytes FROM archive_meta WHERE id = 1"
_EXPIRED = """
    SELECT COUNT(*), COALESCE(SUM(size), 0), MAX(received_at), MAX(seq) FROM (
        SELECT seq, size, received_at FROM archive ORDER BY seq LIMIT ?
    ) WHERE received_at < ?
"""
_DELETE_EXPIRED = "DELETE FROM archive WHERE seq IN (SELECT seq FROM archive ORDER BY seq LIMIT ?) AND received_at < ?"
# The shortest prefix of the oldest events (by seq) whose sizes add up to ``?`` bytes (all of the
# step's events when they do not).
_OVER = """
    SELECT COUNT(*), COALESCE(SUM(size), 0), MAX(received_at), MAX(seq) FROM (
        SELECT seq, size, received_at, SUM(size) OVER (ORDER BY seq) - size AS before
        FROM (SELECT seq, size, received_at FROM archive ORDER BY seq LIMIT ?)
    ) WHERE before < ?
"""
_PRUNED = (
    "UPDATE archive_meta SET events = events - ?, bytes = bytes - ?,"
    " pruned_until = MAX(COALESCE(pruned_until, ?), ?) WHERE id = 1"
)


def archived_size(item: Accepted) -> int:
    """What one archived event counts against ``max_bytes``."""
    return len(item.body) + len(item.message_id) + len(item.source) + len(item.call_type) + ARCHIVE_ROW_OVERHEAD


class Pruner:
    """Retention of the archive: events older than ``retention`` and, beyond ``max_bytes``, the
    oldest, at most ``PRUNE_STEP`` per transaction. Writer thread only."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self._last_check = 0.0

    def step(self, tx: Tx, archived: bool) -> None:
        """Prune if due: every ``PRUNE_INTERVAL`` for age, in every transaction that ``archived``
        for size."""
        if tx.now - self._last_check >= PRUNE_INTERVAL:
            self._last_check = tx.now
            self._remove(tx, _EXPIRED, _DELETE_EXPIRED, tx.now - self.limits.retention)
            archived = True
        if archived:
            (size,) = tx.conn.execute(_META).fetchone()
            excess = size - self.limits.max_bytes
            if excess > 0:
                self._remove(tx, _OVER, None, excess)

    def _remove(self, tx: Tx, select: str, delete: str | None, bound: float) -> None:
        count, size, newest, last_seq = tx.conn.execute(select, (PRUNE_STEP, bound)).fetchone()
        if not count:
            return
        if delete is None:  # a prefix: everything up to its last seq
            tx.conn.execute("DELETE FROM archive WHERE seq <= ?", (last_seq,))
        else:
            tx.conn.execute(delete, (PRUNE_STEP, bound))
        tx.conn.execute(_PRUNED, (count, size, newest, newest))


# -- replays -------------------------------------------------------------------------------------
_INSERT_REPLAY = """
    INSERT INTO replays (id, destination, since, until, source, call_type, event, condition, max_waiting,
                         first_seq, last_seq, matched, cursor, enqueued, skipped, state, created_at, finished_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_MOVE_CURSOR = (
    "UPDATE replays SET cursor = ?, skipped = skipped + ? WHERE id = ? AND cursor = ? AND state = 'running'"
    " RETURNING destination"
)
_ENQUEUE = """
    INSERT INTO jobs (destination, due_at, message_id, source, call_type, received_at, body, leased, replay)
    SELECT ?, ?, message_id, source, call_type, received_at, body, 0, ?
    FROM archive WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq
"""
_WAITING = "SELECT destination, COUNT(*) FROM jobs WHERE replay = ? AND state = 'ready' GROUP BY 1"


@dataclass(frozen=True, slots=True)
class CreateReplay:
    replay: ReplayRecord

    staged = False
    durable = True  # an operator's act, as a redrive
    rows = 1

    def run(self, tx: Tx, store: Store) -> None:
        r, w = self.replay, self.replay.window
        tx.conn.execute(
            _INSERT_REPLAY,
            (r.id, r.destination, w.since, w.until, w.source, w.call_type, r.event, r.where, r.limit,
             r.first_seq, r.last_seq, r.matched, r.cursor, r.enqueued, r.skipped, r.state, r.created_at,
             r.finished_at),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class EnqueueReplay:
    """The replay's next jobs (archived events ``seqs``) and its cursor, in one commit."""

    replay_id: str
    cursor: int
    new_cursor: int
    seqs: Sequence[int]
    skipped: int

    staged = False
    durable = False  # survives kill -9 (WAL); a power loss reverts jobs and cursor together
    rows = 1

    def run(self, tx: Tx, store: Store) -> bool:
        conn = tx.conn
        moved = conn.execute(_MOVE_CURSOR, (self.new_cursor, self.skipped, self.replay_id, self.cursor)).fetchall()
        if not moved:
            return False
        (destination,) = moved[0]
        if self.seqs:
            added = conn.execute(_ENQUEUE, (destination, tx.now, self.replay_id, json_list(list(self.seqs)))).rowcount
            conn.execute("UPDATE replays SET enqueued = enqueued + ? WHERE id = ?", (added, self.replay_id))
            tx.count(destination, added)
        return True


@dataclass(frozen=True, slots=True)
class EndReplay:
    """The replay is ``done`` or ``cancelled``: its waiting jobs are removed, and those in flight
    too (an attempt under way still ends; settling a removed job changes nothing)."""

    replay_id: str
    state: ReplayState

    staged = False
    durable = True
    rows = 1

    def run(self, tx: Tx, store: Store) -> int:
        conn = tx.conn
        changed = conn.execute(
            "UPDATE replays SET state = ?, finished_at = ? WHERE id = ? AND state = 'running'",
            (self.state, tx.now, self.replay_id),
        ).rowcount
        if not changed or self.state != "cancelled":
            return 0
        removed = 0
        for destination, count in conn.execute(_WAITING, (self.replay_id,)).fetchall():
            tx.count(destination, -count)
            removed += count
        conn.execute("DELETE FROM jobs WHERE replay = ? AND state = 'ready'", (self.replay_id,))
        return removed
