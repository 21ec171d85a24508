"""The SQLite delivery log's writes: the operations for its writer thread, the writer's
``Store``, and retention (pruning in bounded steps, so the write lock is never held long)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventrelay.deliverylog.sqlite.schema import INSERT_ATTEMPT, SCHEMA, UPSERT_DELIVERY, add_columns, connect

DEFAULT_MAX_AGE = 7 * 86400.0  # keep a week of history, as the page's longest range
DEFAULT_MAX_ATTEMPTS = 1_000_000  # ~1 KB per attempt row: about 1 GB at most
DEFAULT_MAX_BODIES = 20_000  # failed attempts whose event body is kept for samples (<= 32 KB each: <= 640 MB)
PRUNE_BATCH = 5_000  # rows deleted per prune step: a few ms of write lock, never seconds
PRUNE_EVERY_SECONDS = 5.0  # how often the writer prunes while records keep arriving

Rows = list[tuple[tuple[Any, ...], tuple[Any, ...]]]  # (attempts row, deliveries row) per record


@dataclass(frozen=True, slots=True)
class Retention:
    max_age: float = DEFAULT_MAX_AGE  # seconds of history
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # attempt rows (and delivery rows) at most
    max_bodies: int = DEFAULT_MAX_BODIES  # attempt rows that keep their event body


class Write:
    """One write call for the writer thread (``storage.sqlite_writer.WriteOp``). Never durable:
    the log commits with synchronous=NORMAL (see the package doc)."""

    __slots__ = ("rows", "run")
    durable = False

    def __init__(self, run: Callable[[sqlite3.Connection], Any], rows: int = 1) -> None:
        self.run = run
        self.rows = rows  # records it writes: bounds a transaction's size


class LogStore:
    """The log's ``storage.sqlite_writer.Store``: the schema at open, the writes in order, and
    a prune step at most every ``PRUNE_EVERY_SECONDS`` between batches. Writer thread only."""

    def __init__(self, path: Path, keep: Retention) -> None:
        self.path = path
        self.keep = keep
        self._last_prune = 0.0

    def open(self) -> tuple[sqlite3.Connection, None]:
        conn = connect(self.path)
        try:
            conn.executescript(SCHEMA)
            add_columns(conn)
        except BaseException:
            conn.close()
            raise
        return conn, None

    def run(self, conn: sqlite3.Connection, ops: Sequence[Write]) -> tuple[list[object], None]:
        return [op.run(conn) for op in ops], None

    def committed(self, change: None) -> None:
        """Nothing is counted outside the file."""

    def tidy(self, conn: sqlite3.Connection) -> None:
        if time.monotonic() - self._last_prune <= PRUNE_EVERY_SECONDS:
            return
        self._last_prune = time.monotonic()
        conn.execute("BEGIN IMMEDIATE")
        prune(conn, time.time(), self.keep)
        conn.execute("COMMIT")


def insert(conn: sqlite3.Connection, rows: Rows) -> None:
    conn.executemany(INSERT_ATTEMPT, [a for a, _ in rows])
    conn.executemany(UPSERT_DELIVERY, [d for _, d in rows])


def mark_retrying(conn: sqlite3.Connection, destination: str, ids: list[str] | None, at: float) -> int:
    """Failed, discarded or retrying deliveries of ``destination`` (all, or ``ids``) are retrying
    again, their next attempt at ``at`` (a redrive makes retrying events due at once too)."""
    base = (
        "UPDATE deliveries SET status = 'retrying', updated_at = ?, next_attempt_at = ? "
        "WHERE destination = ? AND status IN ('failed', 'discarded', 'retrying')"
    )
    if ids is None:
        return int(conn.execute(base, (at, at, destination)).rowcount)
    changed = 0
    for i in range(0, len(ids), 500):  # SQLite's bound-parameter limit is far above 500 on every build
        chunk = ids[i : i + 500]
        sql = f"{base} AND message_id IN ({', '.join('?' * len(chunk))})"
        changed += conn.execute(sql, (at, at, destination, *chunk)).rowcount
    return changed


def prune(conn: sqlite3.Connection, now: float, keep: Retention) -> int:
    """One bounded step: attempts past ``max_age`` or over ``max_attempts``, deliveries past
    ``max_age`` (not while retrying) or over ``max_attempts``, bodies over ``max_bodies``.
    Returns the rows removed or emptied (0: nothing left to do)."""
    cutoff = now - keep.max_age
    removed = conn.execute(
        # ids grow with time: look at the oldest rows only (a bounded scan, no time index)
        "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts ORDER BY id LIMIT ?) AND finished_at < ?",
        (PRUNE_BATCH, cutoff),
    ).rowcount
    (count,) = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()
    if count > keep.max_attempts:
        removed += conn.execute(
            "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts ORDER BY id LIMIT ?)",
            (min(count - keep.max_attempts, PRUNE_BATCH),),
        ).rowcount
    removed += conn.execute(
        "DELETE FROM deliveries WHERE (message_id, destination) IN (SELECT message_id, destination "
        "FROM deliveries WHERE updated_at < ? AND status != 'retrying' ORDER BY updated_at LIMIT ?)",
        (cutoff, PRUNE_BATCH),
    ).rowcount
    (rows,) = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()
    if rows > keep.max_attempts:
        removed += conn.execute(
            "DELETE FROM deliveries WHERE (message_id, destination) IN (SELECT message_id, destination "
            "FROM deliveries ORDER BY updated_at LIMIT ?)",
            (min(rows - keep.max_attempts, PRUNE_BATCH),),
        ).rowcount
    edge = conn.execute(
        "SELECT id FROM attempts WHERE event IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET ?",
        (keep.max_bodies,),
    ).fetchone()
    if edge is not None:
        removed += conn.execute(
            "UPDATE attempts SET event = NULL WHERE id IN "
            "(SELECT id FROM attempts WHERE event IS NOT NULL AND id <= ? ORDER BY id LIMIT ?)",
            (edge[0], PRUNE_BATCH),
        ).rowcount
    return int(removed)
