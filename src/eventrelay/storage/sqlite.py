"""SQLite plumbing shared by the SQLite queue and the SQLite delivery log: one way to open a
file, one translation of sqlite3/OS errors into the error tree (a damaged file is reported to
``storage/integrity.py``), one rollback, one checkpoint."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from eventrelay.core.errors import DiskFull, StorageDamaged, StorageError
from eventrelay.storage import integrity

log = logging.getLogger(__name__)

SQLITE_FULL = 13  # primary result code of "database or disk is full"
# Prepared statements kept per connection: sqlite3's default (128) unless a writer runs more shapes.
CACHED_STATEMENTS = 128

DATA_FILE_MODE = 0o600  # the store files hold events (personal data) and the Config API's write keys: owner only
DATA_DIR_MODE = 0o700  # a data directory eventrelay creates: owner only


def connect(
    path: Path,
    *,
    synchronous: Literal["FULL", "NORMAL"],
    busy_timeout_ms: int,
    cache_kib: int,
    pragmas: Sequence[str] = (),
    cached_statements: int = CACHED_STATEMENTS,
) -> sqlite3.Connection:
    """Open (creating the file and its directory if needed) ``path`` in WAL mode.

    WAL: readers (a CLI, the delivery log's reader thread) never block the writer, and a commit
    is one append (one fsync with ``synchronous=FULL``) to the log file. ``busy_timeout_ms``:
    another process holding the write lock briefly is waited for. ``isolation_level=None``:
    transactions are begun and committed explicitly by the writer. ``pragmas`` run after these.
    """
    path.parent.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    if not path.exists():  # created owner-only: SQLite gives its -wal and -shm files the same mode
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, DATA_FILE_MODE))
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, cached_statements=cached_statements
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        for pragma in pragmas:
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


def is_disk_full(exc: BaseException) -> bool:
    """The disk (or ``PRAGMA max_page_count``) refused to let the file grow."""
    if isinstance(exc, sqlite3.Error):
        # set only on errors SQLite itself raised (not on one raised in Python, e.g. a closed connection)
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == SQLITE_FULL) or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def translate(exc: BaseException, what: str, path: Path | None = None) -> StorageError:
    """The eventrelay error for a sqlite3/OS error of ``what`` (e.g. ``the queue database
    /data/queue.db``): ``DiskFull`` when the disk refused, ``StorageDamaged`` when SQLite found
    the file ``path`` damaged (reported once to ``integrity``), else ``StorageError``. Raise it
    ``from exc``."""
    if is_disk_full(exc):
        return DiskFull(f"{what} cannot grow: the disk is full ({exc})")
    if integrity.is_corrupt(exc):
        if path is not None:
            integrity.report(path, exc)
        return StorageDamaged(f"{what} is damaged ({exc}): {integrity.RECOVER_HINT}")
    return StorageError(f"{what} failed: {exc}")


def rollback(conn: sqlite3.Connection) -> None:
    """Undo a failed transaction (SQLite may have done so itself, e.g. on SQLITE_FULL)."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # the original error is the one to report
        log.warning("sqlite: rollback failed: %s", exc)


def checkpoint_and_close(conn: sqlite3.Connection, what: str) -> None:
    """Copy the WAL into the database, truncate it, and close: the file is whole on its own.
    A failed checkpoint (e.g. a full disk) is only logged: the WAL keeps the data and the next
    open checkpoints it."""
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        log.warning("%s: checkpoint at close failed (%s); the WAL keeps the data", what, exc)
    finally:
        conn.close()
