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

from eventrelay.core.errors import QueueFull
from eventrelay.queue.archive import ArchiveLimits
from eventrelay.queue.sqlite.archive_store import Pruner
from eventrelay.queue.sqlite.ops import Append, Op
from eventrelay.queue.sqlite.schema import connect
from eventrelay.queue.sqlite.tx import Tx

# Dedup expiry: keys examined per pass (a slice of the key space, walked round and round), so
# a pass never stalls the writer; 20,000 per second outpaces any ingest rate of one process.
DEDUP_SWEEP_ROWS = 20_000
# Seconds between dedup expiry passes (a pass runs inside a write batch, when there is one).
DEDUP_SWEEP_INTERVAL = 1.0


class Store:
    """The queue's ``storage.sqlite_writer.Store``: opens the file, runs a batch of ops in the
    writer's transaction, keeps what the ops need between batches (the limits, the waiting
    jobs committed, the dedup sweep's position). Writer thread only."""

    def __init__(
        self, path: Path, *, max_events: int, dedup_window: float, archive: ArchiveLimits | None = None
    ) -> None:
        self.path = path
        self.max_events = max_events
        self.dedup_window = dedup_window
        self.archive = archive  # None: accepted events are not archived
        self._pruner = Pruner(archive) if archive is not None else None
        self.committed_ready = 0  # waiting (ready) jobs committed
        self.last_sweep = 0.0
        self.sweep_from = ""  # the dedup sweep's position in the key space ("" = the start)
        self.ordered: frozenset[str] = frozenset()  # destinations whose jobs are claimed by lane (lanes.py)

    def open(self) -> tuple[sqlite3.Connection, Counter[str]]:
        """Open the file; the change: the ready jobs per destination.

        Leases held by a previous process are released (their jobs are due now): the SQLite
        backend is embedded in one process, so on start no live worker can hold a lease.
        """
        conn = connect(self.path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE jobs SET due_at = MIN(due_at, ?), leased = 0 WHERE leased = 1",
                (time.time(),),
            )
            conn.execute("COMMIT")
            counts: Counter[str] = Counter()
            for destination, count in conn.execute(
                "SELECT destination, COUNT(*) FROM jobs WHERE state = 'ready' GROUP BY destination"
            ):
                counts[destination] = count
        except BaseException:
            conn.close()  # closing rolls back whatever was begun
            raise
        self.committed_ready = sum(counts.values())
        return conn, counts

    def run(self, conn: sqlite3.Connection, ops: Sequence[Op]) -> tuple[list[object], Counter[str]]:
        """The ops in order; staged rows are written before an op that must see them and at the
        end. Returns each op's result (``QueueFull``: that op alone refused) and the change of
        ready jobs per destination."""
        tx = Tx(conn, time.time(), self.committed_ready)
        self._sweep_dedup(tx)
        tx.load_dedup([item.message_id for op in ops if isinstance(op, Append) for item in op.items])
        outcomes: list[object] = []
        for op in ops:
            if not op.staged:
                tx.flush()
            try:
                outcomes.append(op.run(tx, self))
            except QueueFull as refused:  # raised before the op wrote anything
                outcomes.append(refused)
        tx.flush()
        if self._pruner is not None:
            self._pruner.step(tx, archived=any(isinstance(op, Append) for op in ops))
        return outcomes, tx.delta

    def committed(self, change: Counter[str]) -> None:
        self.committed_ready += sum(change.values())

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
