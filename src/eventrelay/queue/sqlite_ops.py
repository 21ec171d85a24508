"""The SQLite queue's operations, run on the one writer thread, many per transaction.

Every queue call (append, claim, ack, ...) becomes an ``Op``. The writer thread runs all ops
pending at that moment in one transaction and commits once (one fsync), so concurrent requests
and workers share commits. An op that is refused on its own (``QueueFull``) does not disturb the
others; a transaction that fails (disk full, I/O error) is rolled back and its ops are re-run
one transaction each, so one failing append does not fail the acks that shared its commit.

The hot paths are a handful of statements per transaction whatever its size: appends and acks
are staged and written together, and id lists travel as one JSON parameter (``json_each``) so
every statement stays prepared.

Few statement steps, not only few statements: the sqlite3 module releases the GIL around every
step (every row of an ``executemany`` or of a result), and taking it back while the event loop
runs Python can wait a whole switch interval (5 ms). So rows are inserted many per statement
(multi-row ``VALUES``) and acks are counted by one aggregate row instead of ``RETURNING`` a row
per job.

Nothing here is touched by the event loop except through ``Store.run_batch``'s return value.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson

from eventrelay.core.errors import QueueFull
from eventrelay.core.records import Accepted, DeadStatus, Job
from eventrelay.queue.sqlite_schema import connect, is_disk_full, translate

log = logging.getLogger(__name__)

# Dedup expiry: keys examined per pass (a slice of the key space, walked round and round), so
# a pass never stalls the writer; 20,000 per second outpaces any ingest rate of one process.
DEDUP_SWEEP_ROWS = 20_000
# Seconds between dedup expiry passes (a pass runs inside a write batch, when there is one).
DEDUP_SWEEP_INTERVAL = 1.0
# Retry-After for QueueFull: delivery drains thousands of jobs per second, so a few seconds
# is usually enough for room to appear without clients hammering a full store.
QUEUE_FULL_RETRY_AFTER = 5.0
NEVER = float("-inf")

# Rows per multi-row INSERT at most (7 parameters each: far below SQLite's 32,766). A batch is
# split into power-of-two slices, so a handful of statement shapes cover every size.
INSERT_SLICE = 256
_INSERT_JOB = "INSERT INTO jobs (destination, due_at, message_id, source, call_type, received_at, body, leased) VALUES "
_INSERT_DEDUP = "INSERT OR REPLACE INTO dedup (message_id, seen_at) VALUES "
_LOOKUP_DEDUP = "SELECT message_id, seen_at FROM dedup WHERE message_id IN (SELECT value FROM json_each(?))"
_COUNT_READY = (
    "SELECT destination, COUNT(*) FROM jobs WHERE id IN (SELECT value FROM json_each(?)) AND state = 'ready'"
    " GROUP BY destination"
)
_DELETE_JOBS = "DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?))"
# A claim in three statement steps whatever its size (see the module doc on steps): the ids of
# the due jobs by the claim index, the lease on them, and the jobs as ONE row: their fields as a
# JSON array and their bodies concatenated in the same order (JSON holds no bytes), cut apart by
# the lengths in the JSON. Times travel as 17 significant digits: SQLite's default text form
# keeps 15; this one round-trips exactly (checked on 800,000 values below 1e11; SQLite's own
# formatting strays only beyond ~1e200, which no timestamp reaches).
_DUE = """
    SELECT json_group_array(id) FROM (
        SELECT id FROM jobs WHERE destination = ? AND state = 'ready' AND due_at <= ? ORDER BY due_at LIMIT ?
    )
"""
_LEASE = "UPDATE jobs SET due_at = ?, leased = 1 WHERE id IN (SELECT value FROM json_each(?))"
_JOBS = """
    SELECT
        json_group_array(json_array(
            id, message_id, attempts, iif(first_attempt_at IS NULL, NULL, printf('%!.17g', first_attempt_at)),
            source, call_type, printf('%!.17g', received_at), length(body),
            iif(redriven_at IS NULL, NULL, printf('%!.17g', redriven_at))
        )),
        CAST(group_concat(body, '') AS BLOB)
    FROM jobs WHERE id IN (SELECT value FROM json_each(?))
"""


def _json(values: Sequence[object]) -> str:
    return orjson.dumps(values).decode()


@functools.cache
def _values(head: str, width: int, rows: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return head + ",".join([one] * rows)


def _insert(conn: sqlite3.Connection, head: str, rows: Sequence[tuple[object, ...]]) -> None:
    """INSERT ``rows`` with one statement step per slice of up to ``INSERT_SLICE`` rows."""
    width = len(rows[0])
    start, total = 0, len(rows)
    while start < total:
        size = min(INSERT_SLICE, 1 << ((total - start).bit_length() - 1))
        conn.execute(_values(head, width, size), [v for row in rows[start : start + size] for v in row])
        start += size


@dataclass
class Tx:
    """One write transaction: the connection, its clock, and what it changed so far."""

    conn: sqlite3.Connection
    now: float
    committed_ready: int  # waiting (ready) jobs committed before this transaction
    delta: Counter[str] = field(default_factory=Counter)  # ready jobs added/removed per destination
    ready_change: int = 0  # sum of ``delta``
    known: dict[str, float] = field(default_factory=dict)  # messageId -> seen_at (NEVER: not seen)
    fresh: set[str] = field(default_factory=set)  # messageIds first seen in this transaction
    dedup_rows: list[tuple[str, float]] = field(default_factory=list)
    job_rows: list[tuple[str, float, str, str, str, float, bytes, int]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # job ids

    @property
    def ready_total(self) -> int:
        return self.committed_ready + self.ready_change

    def count(self, destination: str, change: int) -> None:
        self.delta[destination] += change
        self.ready_change += change

    def load_dedup(self, message_ids: list[str]) -> None:
        """Read the dedup entries of ``message_ids`` (all appends of a batch: one query)."""
        known = self.known
        lookup = [mid for mid in message_ids if mid not in known]
        if not lookup:
            return
        known.update(dict.fromkeys(lookup, NEVER))
        known.update(self.conn.execute(_LOOKUP_DEDUP, (_json(lookup),)))

    def flush(self) -> None:
        """Write the staged appends and acks (so later ops in this transaction see them)."""
        if self.acked:
            ids, self.acked = _json(self.acked), []
            for destination, count in self.conn.execute(_COUNT_READY, (ids,)).fetchall():
                self.count(destination, -count)
            self.conn.execute(_DELETE_JOBS, (ids,))
        if self.dedup_rows:
            _insert(self.conn, _INSERT_DEDUP, self.dedup_rows)
            self.dedup_rows = []
        if self.job_rows:
            _insert(self.conn, _INSERT_JOB, self.job_rows)
            self.job_rows = []


class Op(Protocol):
    # True: the op only stages rows, written together at the next flush (appends, acks);
    # False: staged rows are flushed before it runs, so it sees them.
    staged: bool
    # True: its transaction commits with synchronous=FULL (fsync: survives power loss). Appends
    # (an acknowledged event must never be lost) and re-drives (an operator's act) are durable.
    # The rest (claims, lease extensions, acks, retries, dead letters) commit with NORMAL: written
    # to the WAL, so they survive a process crash (kill -9), and fsynced by the next durable
    # commit; a power loss before that can only replay them: a lease or retry time reverts (the
    # job is tried again) or an ack is lost (the event is delivered twice: at-least-once).
    # Measured: three fsyncs per delivered event become one (queue writer CPU per event at 600
    # events/s: see bench/README.md).
    durable: bool
    rows: int  # rows it adds or touches at most: bounds a transaction's size

    def run(self, tx: Tx, store: Store) -> object: ...


class Append:
    __slots__ = ("items", "rows")
    staged = True
    durable = True

    def __init__(self, items: Sequence[Accepted]) -> None:
        self.items = items
        self.rows = len(items)

    def run(self, tx: Tx, store: Store) -> list[bool]:
        items = self.items
        horizon = tx.now - store.dedup_window
        tx.load_dedup([item.message_id for item in items])  # already done for a whole batch
        known, fresh = tx.known, tx.fresh
        result = [False] * len(items)
        new: dict[str, Accepted] = {}
        new_jobs = 0
        for index, item in enumerate(items):
            mid = item.message_id
            if mid in new or mid in fresh or known[mid] >= horizon:
                continue
            new[mid] = item
            result[index] = True
            new_jobs += len(item.destinations)
        if not new:
            return result
        if new_jobs and tx.ready_total + new_jobs > store.max_events:
            raise QueueFull(
                f"the queue holds {tx.ready_total} waiting jobs and this request adds {new_jobs};"
                f" storage.max_events is {store.max_events}",
                retry_after=QUEUE_FULL_RETRY_AFTER,
            )
        now = tx.now
        fresh.update(new)
        tx.dedup_rows.extend((mid, now) for mid in new)
        job_rows = tx.job_rows
        for mid, item in new.items():
            destinations = item.destinations
            for destination in destinations if len(destinations) == 1 else dict.fromkeys(destinations):
                # one job per destination, even if named twice
                job_rows.append((destination, now, mid, item.source, item.call_type, item.received_at, item.body, 0))
                tx.count(destination, 1)
        return result


class AppendHandoff(Append):
    """``Append``, with some of the new jobs leased at once to delivery workers that reserved
    room for them (``offers``: destination -> (jobs at most, lease seconds)): they are handed
    over when the append commits instead of being claimed by a later transaction. Returns the
    fresh flags and those jobs. Their ids are read back after this op's rows are written:
    a multi-row INSERT from the one writer numbers its rows consecutively, ending at
    ``last_insert_rowid()``."""

    __slots__ = ("offers",)

    def __init__(self, items: Sequence[Accepted], offers: Mapping[str, tuple[int, float]]) -> None:
        super().__init__(items)
        self.offers = offers

    def run(self, tx: Tx, store: Store) -> tuple[list[bool], list[Job]]:  # type: ignore[override]
        first = len(tx.job_rows)
        result = super().run(tx, store)
        rows = tx.job_rows
        left = {destination: count for destination, (count, _) in self.offers.items()}
        handed: list[int] = []  # positions in ``rows`` of the jobs leased here
        for position in range(first, len(rows)):
            row = rows[position]
            destination = row[0]
            if left.get(destination, 0) > 0:
                left[destination] -= 1
                rows[position] = (*row[:1], tx.now + self.offers[destination][1], *row[2:7], 1)
                handed.append(position)
        if not handed:
            return result, []
        written = len(rows)
        tx.flush()
        last = tx.conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        first_id = last - written + 1
        jobs = []
        for position in handed:
            destination, _, mid, source, call_type, received_at, body, _ = rows[position]
            jobs.append(Job(str(first_id + position), destination, mid, source, call_type, received_at, body))
        return result, jobs


class Claim:
    __slots__ = ("destination", "lease_seconds", "limit", "rows")
    staged = False
    durable = False

    def __init__(self, destination: str, limit: int, lease_seconds: float) -> None:
        self.destination = destination
        self.limit = limit
        self.lease_seconds = lease_seconds
        self.rows = limit

    def run(self, tx: Tx, store: Store) -> list[Job]:
        conn, destination = tx.conn, self.destination
        ids = conn.execute(_DUE, (destination, tx.now, self.limit)).fetchone()[0]
        if ids == "[]":
            return []
        conn.execute(_LEASE, (tx.now + self.lease_seconds, ids))
        fields, bodies = conn.execute(_JOBS, (ids,)).fetchone()
        bodies = bodies or b""  # NULL when every body is empty
        jobs: list[Job] = []
        end = 0
        rows = orjson.loads(fields)
        for job_id, message_id, attempts, first, source, call_type, received_at, size, redriven in rows:
            start, end = end, end + size
            first_at = None if first is None else float(first)
            body = bodies[start:end]
            jobs.append(
                Job(
                    str(job_id),
                    destination,
                    message_id,
                    source,
                    call_type,
                    float(received_at),
                    body,
                    attempts,
                    first_at,
                    redriven_at=None if redriven is None else float(redriven),
                )
            )
        return jobs


class Ack:
    __slots__ = ("job_id",)
    staged = True
    durable = False
    rows = 1

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id

    def run(self, tx: Tx, store: Store) -> None:
        tx.acked.append(self.job_id)


@dataclass(frozen=True, slots=True)
class Extend:
    job_id: int
    lease_seconds: float

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> None:
        until = tx.now + self.lease_seconds
        tx.conn.execute(
            "UPDATE jobs SET due_at = ?, leased = 1 WHERE id = ? AND state = 'ready'",
            (until, self.job_id),
        )


@dataclass(frozen=True, slots=True)
class Retry:
    job_id: int
    due_at: float

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> None:
        tx.conn.execute(
            "UPDATE jobs SET due_at = ?, leased = 0, attempts = attempts + 1,"
            " first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ? AND state = 'ready'",
            (self.due_at, tx.now, self.job_id),
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    job_id: int
    status: DeadStatus
    reason: str

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> None:
        rows = tx.conn.execute(
            "UPDATE jobs SET state = 'dead', dead_status = ?, reason = ?, leased = 0,"
            " attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?)"
            " WHERE id = ? AND state = 'ready' RETURNING destination",
            (self.status, self.reason, tx.now, self.job_id),
        ).fetchall()
        for (destination,) in rows:
            tx.count(destination, -1)


# A fresh attempt count and retry window from now (due_at and redriven_at are both the
# transaction's time); received_at is left alone. Retry and DeadLetter keep redriven_at.
_REDRIVE = (
    "UPDATE jobs SET state = 'ready', due_at = ?, leased = 0, attempts = 0, first_attempt_at = NULL,"
    " redriven_at = ?, dead_status = NULL, reason = NULL WHERE destination = ? AND state = 'dead'"
)


@dataclass(frozen=True, slots=True)
class Redrive:
    """Dead jobs back to ready. Not bounded by max_events: it is an operator's deliberate act."""

    destination: str
    message_ids: Sequence[str] | None

    staged = False
    durable = True
    rows = 1

    def run(self, tx: Tx, store: Store) -> int:
        if self.message_ids is None:
            moved = tx.conn.execute(_REDRIVE, (tx.now, tx.now, self.destination)).rowcount
        else:
            ids = _json(list(dict.fromkeys(self.message_ids)))
            sql = f"{_REDRIVE} AND message_id IN (SELECT value FROM json_each(?))"
            moved = tx.conn.execute(sql, (tx.now, tx.now, self.destination, ids)).rowcount
        tx.count(self.destination, moved)
        return moved


@dataclass(frozen=True, slots=True)
class SetMaxPages:
    max_pages: int

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> int:
        row = tx.conn.execute(f"PRAGMA max_page_count = {int(self.max_pages)}").fetchone()
        return int(row[0]) if row else 0


@dataclass
class BatchResult:
    outcomes: list[object | BaseException]  # per op: its value, or the exception to raise
    delta: Counter[str]  # change of ready jobs per destination, committed
    commits: int


class Store:
    """The writer thread's state: the one write connection and what it needs between batches."""

    def __init__(self, path: Path, *, max_events: int, dedup_window: float) -> None:
        self.path = path
        self.max_events = max_events
        self.dedup_window = dedup_window
        self.conn: sqlite3.Connection | None = None
        self.last_sweep = 0.0
        self.sweep_from = ""  # the dedup sweep's position in the key space ("" = the start)
        self.disk_was_full = False  # a write failed for lack of space: reclaim the WAL before the next
        self.durable_commits = True  # PRAGMA synchronous is FULL (as connect sets it), else NORMAL

    def open(self) -> Counter[str]:
        """Open the file and return the ready jobs per destination.

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
        self.conn = conn
        self.durable_commits = True
        return counts

    def close(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # e.g. a full disk: the WAL keeps the data, the next start checkpoints
            log.warning("queue %s: checkpoint at close failed (%s); the WAL keeps the data", self.path, exc)
        finally:
            self.conn.close()
            self.conn = None

    def run_batch(self, ops: Sequence[Op], committed_ready: int) -> BatchResult:
        """Run ``ops`` in one transaction; if it fails, each op in its own (see module doc)."""
        if self.disk_was_full:
            self._reclaim_wal()
        try:
            outcomes, tx = self._transaction(ops, committed_ready)
            return BatchResult(outcomes, tx.delta, 1)
        except Exception as exc:
            if len(ops) == 1:
                return BatchResult([self._translate(exc)], Counter(), 0)
        result = BatchResult([], Counter(), 0)
        for op in ops:
            try:
                outcomes, tx = self._transaction([op], committed_ready + sum(result.delta.values()))
            except Exception as exc:
                result.outcomes.append(self._translate(exc))
                continue
            result.outcomes.extend(outcomes)
            result.delta.update(tx.delta)
            result.commits += 1
        return result

    def _translate(self, exc: Exception) -> BaseException:
        if not isinstance(exc, sqlite3.Error | OSError):
            return exc  # a bug, not the database: surface it as is
        error = translate(exc, self.path)
        error.__cause__ = exc
        self.disk_was_full = self.disk_was_full or is_disk_full(exc)
        return error

    def _reclaim_wal(self) -> None:
        """After a full disk: copy the WAL into the database and truncate it, once space allows.

        Every write (a claim, an ack) appends to the WAL, which only shrinks after a complete
        checkpoint; the automatic one waits for thousands of pages, so without this a queue that
        hit a full disk could stay stuck after space returned.
        """
        assert self.conn is not None
        try:
            busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            return  # still no room: the next batch tries again
        self.disk_was_full = busy != 0

    def _transaction(self, ops: Sequence[Op], committed_ready: int) -> tuple[list[object | BaseException], Tx]:
        conn = self.conn
        if conn is None:
            raise sqlite3.ProgrammingError("the queue database is closed")
        tx = Tx(conn, time.time(), committed_ready)
        durable = any(op.durable for op in ops)
        if durable != self.durable_commits:  # a connection setting: changed outside a transaction
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self.durable_commits = durable
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._sweep_dedup(tx)
            tx.load_dedup([item.message_id for op in ops if isinstance(op, Append) for item in op.items])
            outcomes: list[object | BaseException] = []
            for op in ops:
                if not op.staged:
                    tx.flush()
                try:
                    outcomes.append(op.run(tx, self))
                except QueueFull as refused:  # raised before the op wrote anything
                    outcomes.append(refused)
            tx.flush()
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return outcomes, tx

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


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo a failed transaction (SQLite may have done so itself, e.g. on SQLITE_FULL)."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # the original error is the one to report
        log.warning("queue: rollback failed: %s", exc)
