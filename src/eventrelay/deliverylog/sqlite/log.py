"""``SQLiteDeliveryLog``: the ``DeliveryLog`` on one SQLite file (see __init__.py)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from eventrelay.core.outcome import Category
from eventrelay.core.records import AttemptRecord, finished_at
from eventrelay.deliverylog.base import DeliveryRow, Stats
from eventrelay.deliverylog.samples import DeliveredSamples
from eventrelay.deliverylog.sqlite.queries import FAILURE_CATEGORIES, conditions, stats
from eventrelay.deliverylog.sqlite.rows import attempt_row, delivery_row, to_attempt, to_delivery
from eventrelay.deliverylog.sqlite.schema import ATTEMPT_COLUMNS, DELIVERY_COLUMNS, connect
from eventrelay.deliverylog.sqlite.writes import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BODIES,
    LogStore,
    Retention,
    Write,
    insert,
    mark_retrying,
    prune,
)
from eventrelay.deliverylog.stats import STATUSES
from eventrelay.storage.sqlite_reader import SqliteReader
from eventrelay.storage.sqlite_writer import GroupCommitWriter

T = TypeVar("T")

MAX_WRITE_BATCH = 5_000  # records per transaction in the writer (group commit)
MAX_LIST_LIMIT = 1_000_000  # rows one deliveries() call returns at most (a filtered redrive reads ids)


class SQLiteDeliveryLog:
    """``DeliveryLog`` on a SQLite file: writes through the group-commit writer, reads on a
    reader thread with its own connection."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_bodies: int = DEFAULT_MAX_BODIES,
    ) -> None:
        self.path = Path(path)
        self.keep = Retention(max_age, max_attempts, max_bodies)
        self._writer: GroupCommitWriter[Write, None] = GroupCommitWriter(
            LogStore(self.path, self.keep),
            what=f"the delivery log {self.path}",
            thread_name="eventrelay-deliverylog-writer",
            max_rows=MAX_WRITE_BATCH,
        )
        self._reader = SqliteReader(
            lambda: connect(self.path), f"the delivery log {self.path}", "eventrelay-deliverylog-reader"
        )
        self._samples = DeliveredSamples()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._reader.started:
            return
        await self._writer.start()  # the writer has opened the file and made the schema
        self._reader.start()

    async def close(self) -> None:
        await self._writer.close()
        await self._reader.close()

    # -- writes -------------------------------------------------------------------------------
    async def record(self, attempts: Sequence[AttemptRecord]) -> None:
        if attempts:
            rows = [(attempt_row(a, self._samples.keep(a)), delivery_row(a)) for a in attempts]
            await self._writer.submit(Write(lambda conn: insert(conn, rows), len(rows)))

    async def redriven(self, destination: str, message_ids: Sequence[str] | None, at: float) -> int:
        ids = list(message_ids) if message_ids is not None else None
        changed: int = await self._writer.submit(Write(lambda conn: mark_retrying(conn, destination, ids, at)))
        return changed

    async def prune(self, now: float | None = None) -> int:
        """One bounded prune step (the writer also prunes on its own). Returns rows removed or emptied."""
        at = time.time() if now is None else now
        removed: int = await self._writer.submit(Write(lambda conn: prune(conn, at, self.keep)))
        return removed

    # -- reads --------------------------------------------------------------------------------
    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reader.read(fn)

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
        where, args = conditions(destination=destination, category=category, status=status)
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
        return [to_delivery(r) for r in rows]

    async def attempts(self, message_id: str, destination: str | None = None) -> list[AttemptRecord]:
        where, args = conditions(message_id=message_id, destination=destination)
        sql = f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE {' AND '.join(where)} ORDER BY finished_at, id"
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [to_attempt(r) for r in rows]

    async def samples(self, destination: str, category: str | None = None, limit: int = 5) -> list[AttemptRecord]:
        categories = [category] if category is not None else list(FAILURE_CATEGORIES)
        sql = f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE destination = ? AND category = ? "
        latest = "ORDER BY finished_at DESC, id DESC LIMIT ?"

        def query(conn: sqlite3.Connection) -> list[Any]:
            out: list[Any] = []
            for cat in categories:
                kept = "AND event IS NOT NULL " if cat == Category.DELIVERED else ""  # sampled: those kept
                out.extend(conn.execute(sql + kept + latest, (destination, cat, limit)).fetchall())
            return out

        found = [to_attempt(r) for r in await self._read(query)]
        found.sort(key=finished_at, reverse=True)
        return found

    async def replay_counts(self, replay_id: str) -> dict[str, int]:
        sql = "SELECT status, COUNT(*) FROM deliveries WHERE replay = ? GROUP BY status"
        rows = await self._read(lambda conn: conn.execute(sql, (replay_id,)).fetchall())
        return {**dict.fromkeys(STATUSES, 0), **dict(rows)}

    async def stats(self, destination: str, since: float, until: float) -> Stats:
        return await self._read(lambda conn: stats(conn, destination, since, until))
