"""The SQLite archive's reads, on a connection and thread of their own: WAL readers never block
the queue's writer, so looking at the archive (a dry run over millions of events, a replay's
next page) never holds up ingest or delivery."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from eventrelay.queue.archive import ArchivedEvent, ArchiveInfo, ArchiveLimits, ReplayRecord, Span, Window
from eventrelay.storage import sqlite
from eventrelay.storage.sqlite_reader import SqliteReader

T = TypeVar("T")

READ_BUSY_TIMEOUT_MS = 5_000
READ_CACHE_KIB = 8_000  # the archive is read in order, once: a small cache is enough

_REPLAY_COLUMNS = (
    "id, destination, since, until, source, call_type, event, condition, max_waiting, first_seq, last_seq, "
    "matched, cursor, enqueued, skipped, state, created_at, finished_at"
)


class ArchiveReader:
    """Read-only access to the archive and the replays of the queue file at ``path``."""

    def __init__(self, path: Path, limits: ArchiveLimits | None) -> None:
        self.path = path
        self.limits = limits
        self._reader = SqliteReader(self._connect, f"the archive of {path}", "eventrelay-archive-reader")

    def start(self) -> None:
        self._reader.start()

    async def close(self) -> None:
        await self._reader.close()

    async def info(self) -> ArchiveInfo:
        def query(conn: sqlite3.Connection) -> ArchiveInfo:
            events, size, pruned_until = conn.execute(
                "SELECT events, bytes, pruned_until FROM archive_meta WHERE id = 1"
            ).fetchone()
            oldest, newest = conn.execute("SELECT MIN(received_at), MAX(received_at) FROM archive").fetchone()
            limits = self.limits
            return ArchiveInfo(
                enabled=limits is not None,
                events=events,
                bytes=size,
                oldest=oldest,
                newest=newest,
                retention=limits.retention if limits else 0.0,
                max_bytes=limits.max_bytes if limits else 0,
                pruned_until=pruned_until,
            )

        return await self._read(query)

    async def span(self, window: Window) -> Span:
        where, args = _window(window)
        sql = f"SELECT MIN(seq), MAX(seq), COUNT(*) FROM archive WHERE {where}"
        first, last, count = await self._read(lambda conn: conn.execute(sql, args).fetchone())
        return Span(first, last, count)

    async def archived(self, window: Window, after_seq: int, last_seq: int, limit: int) -> list[ArchivedEvent]:
        where, args = _window(window)
        sql = (
            "SELECT seq, message_id, source, call_type, received_at, body FROM archive "
            f"WHERE seq > ? AND seq <= ? AND {where} ORDER BY seq LIMIT ?"
        )
        rows = await self._read(lambda conn: conn.execute(sql, (after_seq, last_seq, *args, limit)).fetchall())
        return [
            ArchivedEvent(seq, mid, source, call_type, at, bytes(body))
            for seq, mid, source, call_type, at, body in rows
        ]

    async def replays(self, destination: str | None) -> list[ReplayRecord]:
        sql = f"SELECT {_REPLAY_COLUMNS} FROM replays"
        args: tuple[Any, ...] = ()
        if destination is not None:
            sql, args = sql + " WHERE destination = ?", (destination,)
        rows = await self._read(lambda conn: conn.execute(sql + " ORDER BY created_at DESC", args).fetchall())
        return [_replay(r) for r in rows]

    async def replay(self, replay_id: str) -> ReplayRecord | None:
        sql = f"SELECT {_REPLAY_COLUMNS} FROM replays WHERE id = ?"
        row = await self._read(lambda conn: conn.execute(sql, (replay_id,)).fetchone())
        return None if row is None else _replay(row)

    async def jobs(self, replay_id: str, state: str) -> int:
        """The replay's jobs in ``state`` (ready: waiting or in flight; dead)."""
        sql = "SELECT COUNT(*) FROM jobs WHERE replay = ? AND state = ?"
        count: int = (await self._read(lambda conn: conn.execute(sql, (replay_id, state)).fetchone()))[0]
        return count

    # -- the reader thread ----------------------------------------------------------------------
    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reader.read(fn)

    def _connect(self) -> sqlite3.Connection:
        return sqlite.connect(
            self.path, synchronous="NORMAL", busy_timeout_ms=READ_BUSY_TIMEOUT_MS, cache_kib=READ_CACHE_KIB
        )


def _window(window: Window) -> tuple[str, list[Any]]:
    where = ["received_at >= ?", "received_at <= ?"]
    args: list[Any] = [window.since, window.until]
    if window.source is not None:
        where.append("source = ?")
        args.append(window.source)
    if window.call_type is not None:
        where.append("call_type = ?")
        args.append(window.call_type)
    return " AND ".join(where), args


def _replay(r: tuple[Any, ...]) -> ReplayRecord:
    return ReplayRecord(
        id=r[0],
        destination=r[1],
        window=Window(r[2], r[3], r[4], r[5]),
        event=r[6],
        where=r[7],
        limit=r[8],
        first_seq=r[9],
        last_seq=r[10],
        matched=r[11],
        cursor=r[12],
        enqueued=r[13],
        skipped=r[14],
        state=r[15],
        created_at=r[16],
        finished_at=r[17],
    )
