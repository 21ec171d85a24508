"""Reads of a SQLite file on one thread of their own, with one read-only connection opened on the
first read: WAL readers never block the file's writer, and the event loop never waits on a query.
Shared by the delivery log and the queue's archive."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from eventrelay.core.errors import StorageError
from eventrelay.storage.sqlite import translate

T = TypeVar("T")


class SqliteReader:
    """``await reader.read(fn)`` runs ``fn(connection)`` on the reader thread. ``what`` names the
    file in errors (``the delivery log /data/deliverylog.db``); ``open_connection`` opens it."""

    def __init__(self, open_connection: Callable[[], sqlite3.Connection], what: str, thread_name: str) -> None:
        self._open = open_connection
        self._what = what
        self._thread_name = thread_name
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(pool, self._close)
            pool.shutdown(wait=True)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._pool is None:
            raise StorageError(f"{self._what} is not started")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, fn)

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._conn is None:
                self._conn = self._open()
                self._conn.execute("PRAGMA query_only = 1")
            return fn(self._conn)
        except sqlite3.Error as exc:
            raise translate(exc, f"reading {self._what}") from exc

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
