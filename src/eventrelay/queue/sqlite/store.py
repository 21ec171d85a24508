"""The SQLite queue's side of the writer thread: the file's state between transactions, and
what one transaction does around its ops (dedup expiry, staged rows). ``storage/sqlite_writer``
begins, commits, retries alone and answers; this decides what the ops mean.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from eventrelay.core.errors import DiskFull, QueueFull
from eventrelay.queue.archive import ArchiveLimits
from eventrelay.queue.sqlite.archive_store import Pruner
from eventrelay.queue.sqlite.ops import Append, Op
from eventrelay.queue.sqlite.schema import connect
from eventrelay.queue.sqlite.tx import Tx
from eventrelay.storage.space import Space

_COUNT_READY = "SELECT destination, COUNT(*) FROM jobs WHERE state = 'ready' GROUP BY destination"
_READ_COUNTS = "SELECT destination, ready FROM ready_counts"
_ADD_COUNT = (
    "INSERT INTO ready_counts (destination, ready) VALUES (?, ?)"
    " ON CONFLICT (destination) DO UPDATE SET ready = ready + excluded.ready"
)

# Dedup expiry: keys examined per pass (a slice of the key space, walked round and round), so
# a pass never stalls the writer; 20,000 per second outpaces any ingest rate of one process.
DEDUP_SWEEP_ROWS = 20_000
# Seconds between dedup expiry passes (a pass runs inside a write batch, when there is one).
DEDUP_SWEEP_INTERVAL = 1.0
PAGE_SIZE = 4096  # SQLite's default page size, which the queue's files use
# Retry-After under the free-space floor: delivery frees room at thousands of events a second,
# an operator frees disk space in minutes; clients retrying every 10 s cost nothing meanwhile.
DISK_FULL_RETRY_AFTER = 10.0


class Store:
    """The queue's ``storage.sqlite_writer.Store``: opens the file, runs a batch of ops in the
    writer's transaction, keeps what the ops need between batches (the limits, the waiting
    jobs committed, the dedup sweep's position). Writer thread only.

    The ready jobs per destination are kept in the file too (``ready_counts``, changed by every
    transaction and read at its start), so several processes writing one file (``serve
    --workers``) each see the deployment's count: the ``max_events`` bound and ``depth`` hold
    for all of them. ``shared``: other live processes may hold leases, so ``open`` neither
    releases leases nor recounts (the process that opened the file unshared did both, before
    any worker started)."""

    def __init__(
        self,
        path: Path,
        *,
        max_events: int,
        dedup_window: float,
        archive: ArchiveLimits | None = None,
        shared: bool = False,
        space: Space | None = None,
    ) -> None:
        self.path = path
        self.space = space  # with it, new events are refused under the free-space floor
        self.max_events = max_events
        self.dedup_window = dedup_window
        self.archive = archive  # None: accepted events are not archived
        self._pruner = Pruner(archive) if archive is not None else None
        self.shared = shared
        self.seen: Counter[str] = Counter()  # ready jobs per destination as this process last saw them
        # the first sweep a second after the open: start-up transactions (e.g. the lane ordering) do
        # no housekeeping, so damage it meets is reported at run time (/healthz), not as a failed start
        self.last_sweep = time.time()
        self.sweep_from = ""  # the dedup sweep's position in the key space ("" = the start)
        self.ordered: frozenset[str] = frozenset()  # destinations whose jobs are claimed by lane (lanes.py)

    def open(self) -> tuple[sqlite3.Connection, Counter[str]]:
        """Open the file; the change: the ready jobs per destination.

        Unshared, leases held by a previous process are released (their jobs are due now: no
        live worker can hold one) and the ready jobs are counted afresh into ``ready_counts``.
        """
        conn = connect(self.path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if not self.shared:
                conn.execute(
                    "UPDATE jobs SET due_at = MIN(due_at, ?), leased = 0 WHERE leased = 1",
                    (time.time(),),
                )
                conn.execute("DELETE FROM ready_counts")
                conn.execute(f"INSERT INTO ready_counts (destination, ready) {_COUNT_READY}")
            counts = self._read_counts(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()  # closing rolls back whatever was begun
            raise
        self.seen = Counter(counts)
        return conn, counts

    def run(self, conn: sqlite3.Connection, ops: Sequence[Op]) -> tuple[list[object], Counter[str]]:
        """The ops in order; staged rows are written before an op that must see them and at the
        end. Returns each op's result (``QueueFull``: that op alone refused) and the change of
        ready jobs per destination since this process last saw them (other processes' changes
        included)."""
        current = self._read_counts(conn)
        others: Counter[str] = Counter(current)
        others.subtract(self.seen)
        tx = Tx(conn, time.time(), sum(current.values()))
        self._sweep_dedup(tx)
        appends = [op for op in ops if isinstance(op, Append)]
        no_room = bool(appends) and not self._room_for_events(conn)
        if no_room and self._pruner is not None:  # the archive gives way to waiting events first
            self._pruner.give_way(tx, 2 * sum(len(item.body) for op in appends for item in op.items))
            no_room = not self._room_for_events(conn)
        if not no_room:
            tx.load_dedup([item.message_id for op in appends for item in op.items])  # every append's, at once
        outcomes: list[object] = []
        for op in ops:
            if no_room and isinstance(op, Append):  # refused before it wrote anything
                outcomes.append(self._disk_full())
                continue
            if not op.staged:
                tx.flush()
            try:
                outcomes.append(op.run(tx, self))
            except QueueFull as refused:  # raised before the op wrote anything
                outcomes.append(refused)
        tx.flush()
        changed = [(destination, n) for destination, n in tx.delta.items() if n]
        if changed:
            conn.executemany(_ADD_COUNT, changed)
        if self._pruner is not None:
            self._pruner.step(tx, archived=bool(appends))
        others.update(tx.delta)
        return outcomes, others

    def _room_for_events(self, conn: sqlite3.Connection) -> bool:
        """Free space plus this file's free pages (new rows take them first) is over the floor."""
        if self.space is None:
            return True
        free_pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return self.space.room_for_events(int(free_pages) * PAGE_SIZE)

    def _disk_full(self) -> DiskFull:
        assert self.space is not None
        return DiskFull(
            f"the queue database {self.path} refuses new events: less than storage.min_free_space "
            f"({self.space.floor / 1048576:.1f} MB) is free; delivery goes on and frees room",
            retry_after=DISK_FULL_RETRY_AFTER,
        )

    def committed(self, change: Counter[str]) -> None:
        self.seen.update(change)

    @staticmethod
    def _read_counts(conn: sqlite3.Connection) -> Counter[str]:
        counts: Counter[str] = Counter()
        for destination, ready in conn.execute(_READ_COUNTS):
            counts[destination] = ready
        return counts

    def tidy(self, conn: sqlite3.Connection) -> None:
        """Nothing between batches: dedup expiry runs inside write batches (``_sweep_dedup``)."""

    def _sweep_dedup(self, tx: Tx) -> None:
        """Forget expired messageIds in the next slice of at most ``DEDUP_SWEEP_ROWS`` keys.

        Two indexed statements, no rows through Python: find where the slice ends, then delete
        the expired keys in it. The slice after the last one starts again from the first key.
        """
        if tx.now - self.last_sweep < DEDUP_SWEEP_INTERVAL:
            return
        self.last_sweep = tx.now
        start = self.sweep_from
        after = ">=" if start == "" else ">"  # the first slice includes the empty key
        row = tx.conn.execute(
            f"SELECT message_id FROM dedup WHERE message_id {after} ? ORDER BY message_id LIMIT 1 OFFSET ?",
            (start, DEDUP_SWEEP_ROWS - 1),
        ).fetchone()
        horizon = tx.now - self.dedup_window
        if row is None:  # the last slice: up to the end, then from the start again
            tx.conn.execute(f"DELETE FROM dedup WHERE message_id {after} ? AND seen_at < ?", (start, horizon))
            self.sweep_from = ""
            return
        tx.conn.execute(
            f"DELETE FROM dedup WHERE message_id {after} ? AND message_id <= ? AND seen_at < ?",
            (start, row[0], horizon),
        )
        self.sweep_from = row[0]
