"""The data directory's lock: one deployment per data directory.

Two independent ``eventrelay serve`` on one directory corrupt each other's state without a
word: the SQLite queue releases every lease at open (the other one's jobs in flight are
claimed again: duplicates), and each keeps its own count of waiting jobs (one goes negative,
which breaks the queue's bound). So ``serve`` takes an exclusive ``flock`` on
``<data>/eventrelay.lock`` before it opens anything, and a second one is refused at once,
naming the lock file and the pid written in it by the holder.

The processes of one deployment share the lock: a parent (a future ``serve --workers N``)
takes it, and hands it to each child with ``for_children()`` (an inherited descriptor of the
same open file, whose number travels in ``EVENTRELAY_DATA_DIR_LOCK_FD``). A flock belongs to the
open file, not to a process, so the children hold it with the parent, and it is released only
when the last of them exits: a kill -9 of the whole deployment frees it (the kernel closes the
files), no stale lock file is ever left to clean up.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Mapping
from pathlib import Path

from eventrelay.core.errors import DataDirInUse, StorageError

LOCK_FILE = "eventrelay.lock"
LOCK_FD_ENV = "EVENTRELAY_DATA_DIR_LOCK_FD"  # a lock descriptor inherited from the deployment's parent
DIR_MODE = 0o700  # the data directory holds events and write keys: owner only
LOCK_MODE = 0o600
MAX_HOLDER_BYTES = 64  # the lock file holds a pid and a newline


class DataDirLock:
    """An exclusive lock on one data directory, held until ``release`` (or the process exits)."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self.path = directory / LOCK_FILE
        self._fd: int | None = fd

    def for_children(self) -> tuple[dict[str, str], tuple[int, ...]]:
        """What a child process of this deployment needs to share the lock: the environment
        entry naming the descriptor, and the descriptor to pass (``subprocess.Popen(env=...,
        pass_fds=...)``). The child's ``lock_data_dir`` then adopts it instead of waiting."""
        if self._fd is None:
            raise StorageError(f"the lock {self.path} was released")
        return {LOCK_FD_ENV: str(self._fd)}, (self._fd,)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor of the open file drops the flock


def lock_data_dir(directory: Path, environ: Mapping[str, str] = os.environ) -> DataDirLock:
    """Take the lock of ``directory`` (created 0700 if missing), or adopt the one this process
    inherited from its deployment's parent. ``DataDirInUse`` names the holder when another
    deployment has it."""
    directory = Path(directory).absolute()
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    inherited = _inherited(path, environ)
    if inherited is not None:
        return DataDirLock(directory, inherited)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_MODE)
    except OSError as exc:
        raise StorageError(f"cannot open the data directory's lock {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd)
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StorageError(f"cannot lock the data directory {directory} ({path}): {exc.strerror}") from exc
        raise DataDirInUse(
            f"the data directory {directory} is in use by another eventrelay (pid {holder}, which holds the "
            f"lock {path}); stop that one first, or give this one its own storage.path"
        ) from None
    _write_holder(fd)
    return DataDirLock(directory, fd)


def _inherited(path: Path, environ: Mapping[str, str]) -> int | None:
    """The descriptor named by ``LOCK_FD_ENV`` if it is an open file of ``path`` whose lock this
    process holds (a flock on an open file that already holds it succeeds); else None."""
    value = environ.get(LOCK_FD_ENV, "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        mine, theirs = os.fstat(fd), os.stat(path)
    except OSError:
        return None
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None
    os.set_inheritable(fd, False)
    return fd


def _holder(fd: int) -> str:
    """The pid the holder wrote in the lock file ("unknown" while it is still writing it)."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, MAX_HOLDER_BYTES, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
    return "unknown"


def _write_holder(fd: int) -> None:
    """Write this pid into the lock file. Best effort: on a full disk the lock still holds, a
    refused second process then names the holder "unknown"."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
