"""Damaged SQLite files: found at start (``quick_check``) or at run time (SQLite says so), and said
once, with what to do.

A page overwritten on disk, a file emptied by a careless copy: SQLite answers "database disk
image is malformed" (``SQLITE_CORRUPT``) or "file is not a database" (``SQLITE_NOTADB``) to
every statement that reads the damaged part, forever. Left alone that is an error every second
and a backlog that never moves while the process reports healthy. So:

- at start, ``quick_check`` reads every page of each store file (``PRAGMA quick_check``: the
  b-trees' structure, not the indexes' contents, about a second per GB), bounded by
  ``QUICK_CHECK_SECONDS``; a damaged file is refused before it is opened for writing
  (``storage/datadir.py``);
- at run time, ``storage.sqlite.translate`` reports a corruption error of a file here:
  ``report`` logs it once per file with ``RECOVER_HINT``, and ``damaged`` tells ``/healthz``
  which files are damaged (the process turns unhealthy until it is restarted after a recovery).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("eventrelay.storage")

SQLITE_CORRUPT = 11  # "database disk image is malformed"
SQLITE_NOTADB = 26  # "file is not a database"
# A quick_check reads the whole file (~1 GB/s on an SSD): past this many seconds it is stopped
# and the start goes on (logged), so a very large store does not delay every start for minutes.
# ``storage.integrity_check: false`` skips it altogether.
QUICK_CHECK_SECONDS = 60.0
QUICK_CHECK_PROBLEMS = 5  # problems a check lists at most: the first few say enough
PROGRESS_OPS = 100_000  # virtual-machine steps between deadline checks (a few ms each)
RECOVER_HINT = (
    "stop eventrelay, run `eventrelay recover --config FILE` (it copies every readable row into a "
    "fresh file and keeps the damaged one aside), then start it again"
)

_lock = threading.Lock()
_damaged: dict[Path, str] = {}  # file -> the first corruption error seen at run time


@dataclass(frozen=True, slots=True)
class Check:
    """A ``quick_check`` result: the problems found (none: intact), and why it stopped short
    if it did (over ``QUICK_CHECK_SECONDS``, or SQLite could not run it: no room for its
    shared-memory file on a full disk, a lock)."""

    problems: tuple[str, ...]
    unchecked: str = ""  # why the check did not read the whole file ("": it did)


def is_corrupt(exc: BaseException) -> bool:
    """SQLite found the file damaged (not a full disk, a lock or a closed connection)."""
    if not isinstance(exc, sqlite3.Error):
        return False
    # set only on errors SQLite itself raised (not on one raised in Python), as in storage.sqlite
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return False
    return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)


def quick_check(path: Path, seconds: float = QUICK_CHECK_SECONDS) -> Check:
    """``PRAGMA quick_check`` of an existing file (never created, never written), stopped after
    ``seconds``. A file SQLite cannot even read is one problem."""
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        return Check((f"cannot be opened: {exc}",)) if is_corrupt(exc) else Check((), f"cannot be opened: {exc}")
    deadline = time.monotonic() + seconds
    stopped = False

    def over_time() -> int:
        nonlocal stopped
        stopped = time.monotonic() > deadline
        return 1 if stopped else 0

    conn.set_progress_handler(over_time, PROGRESS_OPS)
    try:
        rows = conn.execute(f"PRAGMA quick_check({QUICK_CHECK_PROBLEMS})").fetchall()
    except sqlite3.Error as exc:
        if stopped:
            return Check((), f"stopped after {seconds:.0f} s")
        return Check((str(exc),)) if is_corrupt(exc) else Check((), str(exc))
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    problems = tuple(str(row[0]) for row in rows if row[0] != "ok")
    return Check(problems)


def report(path: Path, exc: BaseException) -> None:
    """SQLite reported ``path`` damaged at run time: remembered for ``/healthz``, logged once."""
    key = path.absolute()
    with _lock:
        if key in _damaged:
            return
        _damaged[key] = str(exc)
    log.error("%s is damaged (%s): its work is stuck until it is recovered; %s", key, exc, RECOVER_HINT)


def damaged(paths: list[Path]) -> dict[str, str]:
    """Of ``paths``, those reported damaged since they were last checked, with the error."""
    with _lock:
        return {str(p): _damaged[p.absolute()] for p in paths if p.absolute() in _damaged}


def forget(path: Path) -> None:
    """``path`` passed a check (a start after a recovery): no longer reported damaged."""
    with _lock:
        _damaged.pop(path.absolute(), None)
