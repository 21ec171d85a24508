"""``eventrelay recover``: salvage the readable rows of damaged store files into fresh ones.

    eventrelay recover --config eventrelay.yaml        # the data directory of the config
    eventrelay recover                                 # the demo's (cli/discover.py)

Run it while eventrelay is stopped (it takes the data directory's lock, so a running server
refuses it). For each store file that is missing, emptied, no longer a SQLite file or fails its
integrity check: every readable row is copied into a fresh file with the current schema
(``storage/salvage.py``), the damaged file (with its WAL) is kept aside as
``NAME.damaged-TIMESTAMP``, the fresh file takes its place, and the data directory's marker is
rewritten. It reports how many jobs (and delivery-log rows) it saved and what it could not
read. Intact files are left as they are.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from eventrelay.cli import discover
from eventrelay.runtime.build import LOG_FILE, QUEUE_FILE, data_layout
from eventrelay.storage import datadir
from eventrelay.storage.dirlock import lock_data_dir
from eventrelay.storage.salvage import Salvaged, salvage

SIDE_FILES = ("-wal", "-shm")  # SQLite's companions of a database file, moved with it
FRESH_SUFFIX = ".recovering"  # the fresh file while it is being filled


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "recover", help="salvage the readable rows of damaged store files (eventrelay stopped)"
    )
    p.add_argument("--config", help=discover.CONFIG_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    layout = data_layout(discover.load(args.config))
    if not layout.files:
        print(f"nothing to recover: the {layout.backend} backend keeps its data in its stream", file=out)
        return 0
    lock = lock_data_dir(layout.directory)  # refuses while eventrelay runs on this directory
    try:
        marker = datadir.read_marker(layout.directory)
        listed = marker["files"] if marker is not None else {}
        for name in layout.files:
            path = layout.directory / name
            problem = datadir.file_problem(path, expected=name in listed, check_integrity=True)
            if problem is None:
                state = "intact, left as it is" if path.exists() else "not made yet (the next start makes it)"
                print(f"{path}: {state}", file=out)
                continue
            print(f"{path} {problem}: salvaging its readable rows into a fresh file", file=out)
            _recover(path, FRESH_FILES[name], out)
        datadir.write_marker(layout.directory, layout.files, layout.backend)
    finally:
        lock.release()
    return 0


def _recover(path: Path, make_fresh: Callable[[Path], sqlite3.Connection], out: TextIO) -> None:
    fresh_path = path.with_name(path.name + FRESH_SUFFIX)
    for stale in _with_side_files(fresh_path):
        stale.unlink(missing_ok=True)  # a previous recover that was interrupted
    fresh = make_fresh(fresh_path)
    try:
        found = path.exists() and path.stat().st_size > 0
        saved = salvage(path, fresh) if found else Salvaged()
        summary = _summary(fresh, path.name)
        fresh.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        fresh.close()
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    if path.exists():
        for src, dst in zip(_with_side_files(path), _with_side_files(aside), strict=True):
            if src.exists():
                os.replace(src, dst)
    for src, dst in zip(_with_side_files(fresh_path), _with_side_files(path), strict=True):
        if src.exists():
            os.replace(src, dst)
    _fsync_dir(path.parent)
    print(f"  saved {summary}", file=out)
    for what in saved.unreadable:
        print(f"  could not read {what}", file=out)
    if aside.exists():
        print(f"  the damaged file is kept as {aside}", file=out)


def _summary(fresh: sqlite3.Connection, name: str) -> str:
    if name == QUEUE_FILE:
        states = dict(fresh.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        (dedup,) = fresh.execute("SELECT COUNT(*) FROM dedup").fetchone()
        jobs = sum(states.values())
        return (
            f"{jobs} jobs ({states.get('ready', 0)} waiting, {states.get('dead', 0)} failed) and {dedup} dedup entries"
        )
    (attempts,) = fresh.execute("SELECT COUNT(*) FROM attempts").fetchone()
    (deliveries,) = fresh.execute("SELECT COUNT(*) FROM deliveries").fetchone()
    return f"{attempts} attempts and {deliveries} deliveries of the delivery log"


def _fresh_queue(path: Path) -> sqlite3.Connection:
    from eventrelay.queue.sqlite.schema import connect

    return connect(path)


def _fresh_log(path: Path) -> sqlite3.Connection:
    from eventrelay.deliverylog.sqlite.writes import LogStore, Retention

    conn, _ = LogStore(path, Retention()).open()  # the file as the log makes it
    return conn


FRESH_FILES: dict[str, Callable[[Path], sqlite3.Connection]] = {QUEUE_FILE: _fresh_queue, LOG_FILE: _fresh_log}


def _with_side_files(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
