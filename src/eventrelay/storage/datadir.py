"""The data directory's layout: a marker naming the store files it holds, checked at every start.

SQLite opens a missing or emptied file as a new, empty database without a word: a ``queue.db``
truncated to 0 bytes would start as an empty queue, and the events waiting in it would be gone
with a healthy-looking process. So once the stores opened, ``write_marker`` records in
``eventrelay-data.json`` the files this directory holds and their schema versions, and
``check`` refuses a start when one of them is missing, emptied, no longer a SQLite file, or
fails its integrity check (``storage/integrity.py``), naming the file and what to do.

A directory without a marker is new (or from before markers): its files are checked as they
are, and it gets a marker at the end of the start.

    {"eventrelay_data_dir": 1, "backend": "sqlite",
     "files": {"queue.db": {"schema": 3}, "deliverylog.db": {"schema": 0}}}
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventrelay.core.errors import StorageDamaged
from eventrelay.storage import integrity

log = logging.getLogger("eventrelay.storage")

MARKER_FILE = "eventrelay-data.json"
MARKER_FORMAT = 1  # the marker's own layout; bump when it changes
MARKER_MODE = 0o600
DIR_MODE = 0o700  # the data directory holds events and write keys: owner only
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file

Files = Mapping[str, int]  # store file name (in the directory) -> its schema version (0: unversioned)


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The marker of ``directory``, None if it has none. A marker that cannot be read is damage."""
    path = directory / MARKER_FILE
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageDamaged(
            f"the data directory's marker {path} cannot be read ({exc}); it lists the store files this "
            f"directory must hold. If the files are intact, delete the marker and start again"
        ) from exc
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), dict):
        raise StorageDamaged(f"the data directory's marker {path} is not an eventrelay marker")
    return marker


def file_problem(path: Path, *, expected: bool, check_integrity: bool) -> str | None:
    """What is wrong with the store file ``path`` (None: nothing). ``expected``: the marker
    lists it, so missing or empty means it was lost."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return "is missing" if expected else None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if size == 0:
        return "is empty (0 bytes): it was truncated or replaced" if expected else None
    if head != SQLITE_MAGIC:
        return "is not a SQLite database any more (its header was overwritten)"
    if not check_integrity:
        return None
    check = integrity.quick_check(path)
    if check.unchecked:
        log.warning(
            "%s: integrity check not completed (%s); starting anyway (storage.integrity_check: false skips it)",
            path,
            check.unchecked,
        )
    if check.problems:
        return "fails its integrity check: " + "; ".join(check.problems)
    return None


def check(directory: Path, files: Files, *, check_integrity: bool = True) -> None:
    """Refuse to start on a damaged data directory: ``StorageDamaged`` naming every damaged
    store file of ``files`` and what to do. Files that pass are no longer reported damaged."""
    marker = read_marker(directory)
    listed = marker["files"] if marker is not None else {}
    problems = []
    for name in files:
        path = directory / name
        problem = file_problem(path, expected=name in listed, check_integrity=check_integrity)
        if problem is None:
            integrity.forget(path)
        else:
            problems.append(f"{path} {problem}")
    if problems:
        lines = "\n  ".join(problems)
        raise StorageDamaged(
            f"the data directory {directory} is damaged:\n  {lines}\n"
            f"Nothing was opened or changed. If a file was moved, put it back. Otherwise {integrity.RECOVER_HINT}."
        )


def write_marker(directory: Path, files: Files, backend: str) -> None:
    """Record ``files`` (with their schema versions) as this directory's layout, atomically:
    a temporary file, fsync, rename over the old marker, fsync of the directory."""
    marker = {
        "eventrelay_data_dir": MARKER_FORMAT,
        "backend": backend,
        "files": {name: {"schema": schema} for name, schema in files.items()},
    }
    path = directory / MARKER_FILE
    if path.exists() and read_marker(directory) == marker:
        return  # unchanged: no write at every start
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".marker-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(marker, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, MARKER_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
