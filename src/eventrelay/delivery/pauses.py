"""A destination-wide pause (AccessDenied, Invalid Credentials) shared by the processes of one
deployment.

With ``serve --workers`` the worker process that meets the refusal pauses the destination for
all of them: the end of the pause is written to a small file per destination in the data
directory (``pauses/<destination>``, replaced atomically), which every worker reads before it
claims, at most every ``PAUSE_READ_INTERVAL``. One process: ``NO_SHARING``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

# Seconds a worker goes without re-reading a destination's pause file: a pause taken by another
# process applies here within this (one small read per destination and interval, on the loop).
PAUSE_READ_INTERVAL = 0.25


class PauseBoard(Protocol):
    """Where the processes of a deployment see each other's destination-wide pauses."""

    def publish(self, destination: str, until: float) -> None:
        """``destination`` is paused until ``until`` (epoch seconds)."""

    def until(self, destination: str) -> float:
        """The end of ``destination``'s pause taken anywhere (0.0: none known)."""


class _NoSharing:
    """One process: a pause lives in its worker alone."""

    def publish(self, destination: str, until: float) -> None:
        return None

    def until(self, destination: str) -> float:
        return 0.0


NO_SHARING: PauseBoard = _NoSharing()


class FilePauses:
    """``PauseBoard`` on a directory the processes share (destination names are file names:
    ``config.model.NAME_PATTERN`` allows no separator)."""

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._read: dict[str, tuple[float, float]] = {}  # destination -> (read at, until)

    def publish(self, destination: str, until: float) -> None:
        path = self.directory / destination
        tmp = path.with_name(f".{destination}.{os.getpid()}")
        tmp.write_text(repr(until))
        os.replace(tmp, path)
        self._read[destination] = (self._clock(), until)

    def until(self, destination: str) -> float:
        now = self._clock()
        read = self._read.get(destination)
        if read is not None and now - read[0] < PAUSE_READ_INTERVAL:
            return read[1]
        try:
            until = float((self.directory / destination).read_text())
        except (OSError, ValueError):  # none yet, or being replaced: no pause known
            until = 0.0
        self._read[destination] = (now, until)
        return until
