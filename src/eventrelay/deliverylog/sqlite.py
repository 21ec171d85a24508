"""The SQLite delivery log: every attempt, each event's state per destination, stats and samples.

Its own file (``deliverylog.db``) beside the queue, in WAL mode with ``synchronous=NORMAL``.
NORMAL is enough here, unlike the queue's FULL: the log is written *before* the queue settles a
job (at-least-once), so a power loss can lose at most the last log rows, i.e. a missing history
line, while the queue still holds the job and attempts it again. Nothing accepted is lost.

Writes go through one writer thread that groups whatever is waiting into one transaction (group
commit), so thousands of records per second cost a few commits. Reads run on a second connection
in their own thread; neither ever blocks the event loop. WAL lets other processes (the CLI) read,
and write briefly, while a server runs.

Retention: at most ``max_attempts`` attempt rows and ``max_age`` seconds of history; event bodies
(kept for failed attempts only, for samples) on at most ``max_bodies`` rows. Pruning runs in the
writer thread in bounded batches so it never holds the write lock for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from eventrelay.core.errors import DiskFull, StorageError
from eventrelay.core.outcome import Category
from eventrelay.core.records import AttemptRecord, error_text, finished_at
from eventrelay.deliverylog.base import DeliveryRow, ErrorCount, Stats
from eventrelay.deliverylog.stats import (
    STATUSES,
    add_to_bucket,
    bucket_width,
    empty_buckets,
    latency_of,
    sort_errors,
)

T = TypeVar("T")

DEFAULT_MAX_AGE = 7 * 86400.0  # keep a week of history, as the page's longest range
DEFAULT_MAX_ATTEMPTS = 1_000_000  # ~1 KB per attempt row: about 1 GB at most
DEFAULT_MAX_BODIES = 20_000  # failed attempts whose event body is kept for samples (<= 32 KB each: <= 640 MB)
PRUNE_BATCH = 5_000  # rows deleted per prune step: a few ms of write lock, never seconds
PRUNE_EVERY_SECONDS = 5.0  # how often the writer prunes while records keep arriving
MAX_WRITE_BATCH = 5_000  # records per transaction in the writer (group commit)
BUSY_TIMEOUT_MS = 10_000  # another process (the CLI) may hold the write lock briefly
MAX_LIST_LIMIT = 1_000_000  # rows one deliveries() call returns at most (a filtered redrive reads ids)

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL, destination TEXT NOT NULL, source TEXT NOT NULL, call_type TEXT NOT NULL,
    attempt INTEGER NOT NULL, status TEXT NOT NULL, category TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL NOT NULL, latency_ms REAL NOT NULL, received_at REAL NOT NULL,
    function TEXT, qualifier TEXT, invocation_type TEXT, status_code INTEGER, error_type TEXT,
    error_message TEXT, log_tail TEXT, executed_version TEXT, request TEXT, response_body TEXT,
    event BLOB, next_attempt_at REAL
);
CREATE INDEX IF NOT EXISTS attempts_message ON attempts(message_id, destination);
-- covering indexes: the stats queries read only the index, never the wide attempt rows
CREATE INDEX IF NOT EXISTS attempts_series ON attempts(destination, finished_at, category);
CREATE INDEX IF NOT EXISTS attempts_errors ON attempts(destination, category, finished_at, message_id);
CREATE INDEX IF NOT EXISTS attempts_with_body ON attempts(id) WHERE event IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    message_id TEXT NOT NULL, destination TEXT NOT NULL, source TEXT NOT NULL, call_type TEXT NOT NULL,
    function TEXT, category TEXT NOT NULL, attempts INTEGER NOT NULL, status TEXT NOT NULL, error TEXT,
    received_at REAL NOT NULL, updated_at REAL NOT NULL, delivered_at REAL, next_attempt_at REAL,
    PRIMARY KEY (message_id, destination)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_latency
    ON deliveries(destination, status, updated_at, received_at, delivered_at);
CREATE INDEX IF NOT EXISTS deliveries_dest_time ON deliveries(destination, updated_at);
CREATE INDEX IF NOT EXISTS deliveries_time ON deliveries(updated_at);
"""

ATTEMPT_COLUMNS = (
    "message_id, destination, source, call_type, attempt, status, category, started_at, finished_at, "
    "latency_ms, received_at, function, qualifier, invocation_type, status_code, error_type, error_message, "
    "log_tail, executed_version, request, response_body, event, next_attempt_at"
)
INSERT_ATTEMPT = f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 23)})"
UPSERT_DELIVERY = """
INSERT INTO deliveries (message_id, destination, source, call_type, function, category, attempts, status,
                        error, received_at, updated_at, delivered_at, next_attempt_at)
VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)
ON CONFLICT (message_id, destination) DO UPDATE SET
    source = excluded.source, call_type = excluded.call_type, function = excluded.function,
    category = excluded.category, attempts = deliveries.attempts + 1, status = excluded.status,
    error = excluded.error, received_at = excluded.received_at, updated_at = excluded.updated_at,
    delivered_at = excluded.delivered_at, next_attempt_at = excluded.next_attempt_at
"""
DELIVERY_COLUMNS = (
    "message_id, destination, source, call_type, function, category, attempts, status, error, "
    "received_at, updated_at, next_attempt_at, delivered_at"
)

# Percentiles are computed over at most the latest this many deliveries of the range: exact below it,
# a recent sample of 200k above it (a 7-day range of a busy destination stays a sub-second query).
MAX_LATENCY_SAMPLE = 200_000
FAILURE_CATEGORIES = tuple(str(c) for c in Category if c is not Category.DELIVERED)
CACHE_KIB = 16_384  # page cache per connection (KiB): big group commits stay in memory; RSS stays small

Op = Callable[[sqlite3.Connection], Any]


@dataclass(slots=True)
class _Pending:
    op: Op
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return conn


def _wrap(exc: sqlite3.Error, what: str) -> StorageError:
    text = str(exc)
    if "full" in text.lower():
        return DiskFull(f"delivery log: {what}: {text}")
    return StorageError(f"delivery log: {what}: {text}")


class SQLiteDeliveryLog:
    def __init__(
        self,
        path: Path | str,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_bodies: int = DEFAULT_MAX_BODIES,
    ) -> None:
        self.path = Path(path)
        self.max_age = max_age
        self.max_attempts = max_attempts
        self.max_bodies = max_bodies
        self._ops: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._last_prune = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = threading.Thread(target=self._write_loop, name="eventrelay-deliverylog-writer", daemon=True)
        self._writer.start()
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eventrelay-deliverylog-reader")
        await self._write(lambda conn: None)  # the writer has opened the file and made the schema

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._ops.put(None)
            await asyncio.to_thread(writer.join)
        reader, self._reader = self._reader, None
        if reader is not None:
            await asyncio.get_running_loop().run_in_executor(reader, self._close_reader)
            reader.shutdown(wait=True)

    # -- writes -------------------------------------------------------------------------------
    async def record(self, attempts: Sequence[AttemptRecord]) -> None:
        if attempts:
            rows = [(_attempt_row(a), _delivery_row(a)) for a in attempts]
            await self._write(lambda conn: _insert(conn, rows))

    async def redriven(self, destination: str, message_ids: Sequence[str] | None, at: float) -> int:
        ids = list(message_ids) if message_ids is not None else None
        return await self._write(lambda conn: _mark_retrying(conn, destination, ids, at))

    async def prune(self, now: float | None = None) -> int:
        """One bounded prune step (the writer also prunes on its own). Returns rows removed or emptied."""
        return await self._write(lambda conn: self._prune(conn, time.time() if now is None else now))

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise StorageError("delivery log is not started")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ops.put(_Pending(op, future, loop))
        return await future

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(self.path)
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            self._fail_all(_wrap(exc, f"cannot open {self.path}"))
            return
        try:
            while (batch := self._next_batch()) is not None:
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _next_batch(self) -> list[_Pending] | None:
        first = self._ops.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < MAX_WRITE_BATCH:
            try:
                item = self._ops.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._ops.put(None)  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        results: list[Any] = []
        error: BaseException | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [p.op(conn) for p in batch]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = _wrap(exc, "write failed")
        except Exception as exc:  # a bug in an op: report it to every waiter, keep the writer alive
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = exc
        for i, p in enumerate(batch):
            _resolve(p, error, results[i] if error is None else None)
        if error is None and time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
            self._last_prune = time.monotonic()
            with contextlib.suppress(sqlite3.Error):
                conn.execute("BEGIN IMMEDIATE")
                self._prune(conn, time.time())
                conn.execute("COMMIT")
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")

    def _fail_all(self, error: BaseException) -> None:
        while (item := self._ops.get()) is not None:
            _resolve(item, error, None)

    def _prune(self, conn: sqlite3.Connection, now: float) -> int:
        cutoff = now - self.max_age
        removed = conn.execute(
            # ids grow with time: look at the oldest rows only (a bounded scan, no time index)
            "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts ORDER BY id LIMIT ?) AND finished_at < ?",
            (PRUNE_BATCH, cutoff),
        ).rowcount
        (count,) = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()
        if count > self.max_attempts:
            removed += conn.execute(
                "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts ORDER BY id LIMIT ?)",
                (min(count - self.max_attempts, PRUNE_BATCH),),
            ).rowcount
        removed += conn.execute(
            "DELETE FROM deliveries WHERE (message_id, destination) IN (SELECT message_id, destination "
            "FROM deliveries WHERE updated_at < ? AND status != 'retrying' ORDER BY updated_at LIMIT ?)",
            (cutoff, PRUNE_BATCH),
        ).rowcount
        (rows,) = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()
        if rows > self.max_attempts:
            removed += conn.execute(
                "DELETE FROM deliveries WHERE (message_id, destination) IN (SELECT message_id, destination "
                "FROM deliveries ORDER BY updated_at LIMIT ?)",
                (min(rows - self.max_attempts, PRUNE_BATCH),),
            ).rowcount
        edge = conn.execute(
            "SELECT id FROM attempts WHERE event IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET ?",
            (self.max_bodies,),
        ).fetchone()
        if edge is not None:
            removed += conn.execute(
                "UPDATE attempts SET event = NULL WHERE id IN "
                "(SELECT id FROM attempts WHERE event IS NOT NULL AND id <= ? ORDER BY id LIMIT ?)",
                (edge[0], PRUNE_BATCH),
            ).rowcount
        return int(removed)

    # -- reads --------------------------------------------------------------------------------
    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise StorageError("delivery log is not started")
        return await asyncio.get_running_loop().run_in_executor(self._reader, self._run_read, fn)

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._read_conn is None:
                self._read_conn = _connect(self.path)
                self._read_conn.execute("PRAGMA query_only = 1")
            return fn(self._read_conn)
        except sqlite3.Error as exc:
            raise _wrap(exc, "read failed") from exc

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    async def deliveries(
        self,
        *,
        destination: str | None = None,
        category: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        where, args = _where(destination=destination, category=category, status=status)
        if since is not None:
            where.append("updated_at >= ?")
            args.append(since)
        if until is not None:
            where.append("updated_at <= ?")
            args.append(until)
        sql = f"SELECT {DELIVERY_COLUMNS} FROM deliveries"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY updated_at DESC LIMIT ?"
        args.append(max(0, min(limit, MAX_LIST_LIMIT)))
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [_to_delivery(r) for r in rows]

    async def attempts(self, message_id: str, destination: str | None = None) -> list[AttemptRecord]:
        where, args = _where(message_id=message_id, destination=destination)
        sql = f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE {' AND '.join(where)} ORDER BY finished_at, id"
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [_to_attempt(r) for r in rows]

    async def samples(self, destination: str, category: str | None = None, limit: int = 5) -> list[AttemptRecord]:
        categories = [category] if category is not None else [str(c) for c in Category if c is not Category.DELIVERED]
        sql = (
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE destination = ? AND category = ? "
            "ORDER BY finished_at DESC, id DESC LIMIT ?"
        )

        def query(conn: sqlite3.Connection) -> list[Any]:
            out: list[Any] = []
            for cat in categories:
                out.extend(conn.execute(sql, (destination, cat, limit)).fetchall())
            return out

        found = [_to_attempt(r) for r in await self._read(query)]
        found.sort(key=finished_at, reverse=True)
        return found

    async def stats(self, destination: str, since: float, until: float) -> Stats:
        return await self._read(lambda conn: _stats(conn, destination, since, until))


# -- SQL helpers (run in the writer or reader thread) -----------------------------------------------
def _resolve(p: _Pending, error: BaseException | None, result: Any) -> None:
    def settle() -> None:
        if p.future.done():
            return
        if error is not None:
            p.future.set_exception(error)
        else:
            p.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the waiting loop is closed: nobody to tell
        p.loop.call_soon_threadsafe(settle)


def _insert(conn: sqlite3.Connection, rows: list[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> None:
    conn.executemany(INSERT_ATTEMPT, [a for a, _ in rows])
    conn.executemany(UPSERT_DELIVERY, [d for _, d in rows])


def _mark_retrying(conn: sqlite3.Connection, destination: str, ids: list[str] | None, at: float) -> int:
    base = (
        "UPDATE deliveries SET status = 'retrying', updated_at = ?, next_attempt_at = ? "
        "WHERE destination = ? AND status IN ('failed', 'discarded')"
    )
    if ids is None:
        return int(conn.execute(base, (at, at, destination)).rowcount)
    changed = 0
    for i in range(0, len(ids), 500):  # SQLite's bound-parameter limit is far above 500 on every build
        chunk = ids[i : i + 500]
        sql = f"{base} AND message_id IN ({', '.join('?' * len(chunk))})"
        changed += conn.execute(sql, (at, at, destination, *chunk)).rowcount
    return changed


def _where(**filters: str | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in filters.items():
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    return where, args


def _attempt_row(a: AttemptRecord) -> tuple[Any, ...]:
    delivered = a.category is Category.DELIVERED
    return (
        a.message_id,
        a.destination,
        a.source,
        a.call_type,
        a.attempt,
        a.status,
        str(a.category),
        a.started_at,
        finished_at(a),
        a.latency_ms,
        a.received_at,
        a.function,
        a.qualifier,
        a.invocation_type,
        a.status_code,
        a.error_type,
        a.error_message,
        a.log_tail,
        a.executed_version,
        orjson.dumps(a.request).decode() if a.request else None,
        a.response_body,
        None if delivered or not a.event else a.event,
        a.next_attempt_at,
    )


def _delivery_row(a: AttemptRecord) -> tuple[Any, ...]:
    end = finished_at(a)
    return (
        a.message_id,
        a.destination,
        a.source,
        a.call_type,
        a.function,
        str(a.category),
        a.status,
        error_text(a),
        a.received_at,
        end,
        end if a.category is Category.DELIVERED else None,
        a.next_attempt_at,
    )


def _to_attempt(r: Sequence[Any]) -> AttemptRecord:
    return AttemptRecord(
        message_id=r[0],
        destination=r[1],
        source=r[2],
        call_type=r[3],
        attempt=r[4],
        status=r[5],
        category=Category(r[6]),
        started_at=r[7],
        latency_ms=r[9],
        received_at=r[10],
        function=r[11],
        qualifier=r[12],
        invocation_type=r[13],
        status_code=r[14],
        error_type=r[15],
        error_message=r[16],
        log_tail=r[17],
        executed_version=r[18],
        request=orjson.loads(r[19]) if r[19] else {},
        response_body=r[20],
        event=bytes(r[21]) if r[21] is not None else b"",
        next_attempt_at=r[22],
    )


def _to_delivery(r: Sequence[Any]) -> DeliveryRow:
    return DeliveryRow(
        message_id=r[0],
        destination=r[1],
        source=r[2],
        call_type=r[3],
        function=r[4],
        category=Category(r[5]),
        attempts=r[6],
        status=r[7],
        error=r[8],
        received_at=r[9],
        updated_at=r[10],
        next_attempt_at=r[11],
        delivered_at=r[12],
    )


def _stats(conn: sqlite3.Connection, destination: str, since: float, until: float) -> Stats:
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in conn.execute(
        "SELECT status, COUNT(*) FROM deliveries WHERE destination = ? AND updated_at BETWEEN ? AND ? GROUP BY status",
        (destination, since, until),
    ):
        counts[status] = n
    latencies = [
        v
        for (v,) in conn.execute(
            "SELECT (delivered_at - received_at) * 1000.0 FROM deliveries WHERE destination = ? "
            "AND status = 'delivered' AND updated_at BETWEEN ? AND ? ORDER BY updated_at DESC LIMIT ?",
            (destination, since, until, MAX_LATENCY_SAMPLE),
        )
    ]
    errors = sort_errors(
        ErrorCount(Category(cat), n, events)
        for cat, n, events in conn.execute(
            "SELECT category, COUNT(*), COUNT(DISTINCT message_id) FROM attempts WHERE destination = ? "
            f"AND category IN ({', '.join('?' * len(FAILURE_CATEGORIES))}) AND finished_at BETWEEN ? AND ? "
            "GROUP BY category",
            (destination, *FAILURE_CATEGORIES, since, until),
        )
    )
    width = bucket_width(since, until)
    buckets = empty_buckets(since, width)
    for index, category, n in conn.execute(
        "SELECT MIN(CAST((finished_at - ?) / ? AS INTEGER), ?), category, COUNT(*) FROM attempts "
        "WHERE destination = ? AND finished_at BETWEEN ? AND ? GROUP BY 1, 2",
        (since, width, len(buckets) - 1, destination, since, until),
    ):
        add_to_bucket(buckets, int(index), category, n)
    return Stats(destination, since, until, counts, latency_of(latencies), errors, buckets, width)
