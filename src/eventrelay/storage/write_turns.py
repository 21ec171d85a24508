"""Turns at writing one SQLite file, among the processes of a deployment (``serve --workers``).

SQLite lets one writer in at a time; a connection that finds the file locked waits in its busy
handler, which sleeps between tries (1, 2, 5, 10 ... up to 100 ms) whenever the lock is freed.
With several processes committing hundreds of times a second, those sleeps, not the work,
bound throughput and latency. So every writer takes an exclusive ``flock`` on
``<file>-writelock`` around its transactions: the kernel queues the waiters and wakes the next
one the moment the lock is released. SQLite's own lock is then always free at ``BEGIN``; a
process that does not take turns (an older tool) is still served by the busy timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_SUFFIX = "-writelock"
LOCK_MODE = 0o600


class WriteTurns:
    """The turns of one SQLite file. One per writer thread: ``open``, then ``turn()`` around each
    write; ``close`` at the end. A flock is per open file, so two writers in one process (tests)
    take turns as two processes do."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + LOCK_SUFFIX)
        self._fd: int | None = None

    def open(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner only; before the database
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_MODE)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        fd = self._fd
        if fd is None:  # not opened: nothing to take turns with
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
