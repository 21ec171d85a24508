"""Free space of the data directory: a floor under new events, a bounded WAL, a reserve file.

What a full disk did before: ingest filled the disk (data in the queue's WAL, 14.5 MB of 20),
every write then failed, delivery stalled (a claim and an ack are writes too), and when some
space came back the checkpoint that copies the WAL into queue.db used all of it, so nothing
recovered, not even after a restart. The rules here keep room to drain:

- **floor** (``storage.min_free_space``, default 64 MB): new events are refused
  (``DiskFull``: 503 with Retry-After) while the free space plus the queue file's own free pages
  is under it. Claims, acks, retries and the delivery log's records go on, so delivery drains
  the backlog, and its freed pages take the next events as soon as room is back;
- **bounded WAL**: a write-ahead log holds a second copy of the pages it carries until a
  checkpoint moves them into the database, and that move needs as much room again. SQLite's
  checkpoints and ``journal_size_limit`` keep it at its usual bound; when the free space is
  short, the writer also checkpoints and truncates it after each batch that takes it over a
  share (``WAL_SHARE_OF_FREE``) of what is free (``wal_limit()``);
- **reserve** (``RESERVE_FILE``, ``RESERVE_BYTES``): a file of zeros held while there is room.
  When the disk is full all the same (another program filled it), a write fails, the reserve is
  deleted and that room lets the checkpoint, the acks and the deletes go on; it is made again
  once space is back. It is also released at start when the disk is nearly full, so eventrelay
  can open its files and drain the backlog.

One ``Space`` serves every writer thread of a data directory (queue and delivery log).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("eventrelay.storage")

MIB = 1024 * 1024
# A WAL over this share of the free space is checkpointed and truncated after the batch that
# grew it: the copy a checkpoint makes then always fits, however full the disk is.
WAL_SHARE_OF_FREE = 4
RESERVE_FILE = "eventrelay.reserve"
# The reserve: room for a checkpoint of a small WAL, a few thousand acks and their records, and
# a start (opening the files, releasing leases) when another program took the rest. At most
# half the floor, so a small floor on a small volume still leaves room for events.
RESERVE_BYTES = 8 * MIB
RESERVE_RETRY_SECONDS = 5.0  # how often a released reserve is tried again while space is short


class Space:
    """The free space of ``directory``'s file system, as the writer threads need it."""

    def __init__(self, directory: Path, floor: int) -> None:
        self.directory = directory
        self.floor = floor
        self.reserve_bytes = min(RESERVE_BYTES, floor // 2)
        self.reserve_path = directory / RESERVE_FILE
        self._lock = threading.Lock()
        self._reserve_tried = float("-inf")
        self._warned_low = False

    # -- free space ---------------------------------------------------------------------------
    def free(self) -> int:
        """Bytes free for this process's files now. Read afresh every time (one ``statvfs``, a
        microsecond): near the floor a figure even 100 ms old lets a burst of appends through."""
        return _statvfs_free(self.directory)

    def room_for_events(self, reusable: int) -> bool:
        """New events may be stored: free space plus ``reusable`` bytes (the queue file's free
        pages, which new rows take first) is over the floor. Logged when it turns."""
        room = self.free() + reusable >= self.floor
        if room and self._warned_low:
            self._warned_low = False
            log.info("free space in %s is over storage.min_free_space again: new events are accepted", self.directory)
        elif not room and not self._warned_low:
            self._warned_low = True
            log.warning(
                "less than storage.min_free_space (%.1f MB) is free in %s: new events are refused (503 disk_full) "
                "while delivery drains the backlog",
                self.floor / MIB,
                self.directory,
            )
        return room

    def low(self) -> bool:
        """Under the floor: the delivery log makes room for its records by pruning first."""
        return self.free() < self.floor

    def wal_limit(self, usual: int) -> int | None:
        """The largest WAL to keep after a batch when the free space is short of
        ``WAL_SHARE_OF_FREE`` times ``usual`` (its share of it); None when there is room enough
        for SQLite's own checkpoints and ``journal_size_limit`` to bound it."""
        share = self.free() // WAL_SHARE_OF_FREE
        return share if share < usual else None

    # -- the reserve --------------------------------------------------------------------------
    def hold_reserve(self) -> bool:
        """Make the reserve file if it is missing and there is room for it over the floor
        (tried at most every ``RESERVE_RETRY_SECONDS``). True if it is held."""
        if self.reserve_bytes <= 0:
            return False
        if self.reserve_path.exists():
            return True
        now = time.monotonic()
        with self._lock:
            if now - self._reserve_tried < RESERVE_RETRY_SECONDS:
                return False
            self._reserve_tried = now
        if _statvfs_free(self.directory) < self.floor + 2 * self.reserve_bytes:
            return False
        try:
            _allocate(self.reserve_path, self.reserve_bytes)
        except OSError as exc:
            log.warning("could not make the space reserve %s: %s", self.reserve_path, exc.strerror)
            self.reserve_path.unlink(missing_ok=True)
            return False
        return True

    def before_start(self) -> None:
        """Under the floor at start: release the reserve, so that opening the files (which
        writes a little: leases released, a WAL recovered) finds room and the backlog drains."""
        if _statvfs_free(self.directory) < self.floor:
            self.release_reserve("the disk is nearly full at start")

    def release_reserve(self, why: str) -> bool:
        """Delete the reserve (the disk is full): its room lets checkpoints and deletes go on.
        True if there was one."""
        try:
            self.reserve_path.unlink()
        except FileNotFoundError:
            return False
        with self._lock:
            self._reserve_tried = time.monotonic()  # not made again at once
        log.warning("%s: released the %.1f MB space reserve %s", why, self.reserve_bytes / MIB, self.reserve_path)
        return True


def _statvfs_free(directory: Path) -> int:
    try:
        stats = os.statvfs(directory)
    except OSError:
        return 0
    return stats.f_bavail * stats.f_frsize


def _allocate(path: Path, size: int) -> None:
    """A file of ``size`` bytes whose blocks are really allocated (not a sparse file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            chunk = b"\0" * MIB
            for _ in range(size // MIB):
                os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def keep_wal_small(conn: sqlite3.Connection, database: Path, space: Space, usual: int) -> bool:
    """After a batch: checkpoint the WAL of ``database`` into it and truncate the WAL when it is
    over ``space.wal_limit(usual)``. Returns whether it did; raises ``sqlite3.Error`` (a full
    disk: the caller releases the reserve)."""
    limit = space.wal_limit(usual)
    if limit is None:
        return False
    try:
        size = wal_path(database).stat().st_size
    except FileNotFoundError:
        return False
    if size <= limit:
        return False
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return True
