"""Copy every readable row of a damaged SQLite file into a fresh one (``eventrelay recover``).

SQLite's own recovery (the CLI's ``.recover``) needs the ``sqlite_dbpage`` table, which
Debian's sqlite3 3.40 CLI and Python's module are built without, so the rows are read here
through SQL, which stops at the first damaged page of a b-tree:

- a table with rowids (``jobs``, ``attempts``) is read in rowid order; where a read fails, the
  next readable rowid is found by probing further and further ahead (1, 2, 4, ... rowids:
  past a damaged leaf page, or an interior page and the rows under it), then back by bisection
  to the first one that reads, so only the rows on damaged pages are lost;
- a ``WITHOUT ROWID`` table (``dedup``, ``deliveries``) is read forwards in key order until a
  read fails, then backwards from the end until one fails: what lies between is lost.

The damaged file is opened read-only (``mode=ro``: its WAL is read, never checkpointed into it),
so it stays as it was found. The fresh file already has the current schema (made by its
store); only the columns both have are copied.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CHUNK_ROWS = 1_000  # rows read per statement while the file reads well
MAX_ROWID = 2**63 - 1  # SQLite's largest rowid: probing ahead stops there


@dataclass
class Salvaged:
    """What ``salvage`` copied: rows per table, and what it could not read."""

    rows: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


def salvage(damaged: Path, fresh: sqlite3.Connection) -> Salvaged:
    """Copy into ``fresh`` (open, with its tables made) every row of its tables that can be
    read from ``damaged``; commits once at the end."""
    result = Salvaged()
    try:
        src = sqlite3.connect(f"{damaged.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        result.unreadable.append(f"the whole file: {exc}")
        return result
    try:
        fresh.execute("BEGIN")
        for table in _tables(fresh):
            result.rows[table] = _copy_table(src, fresh, table, result.unreadable)
        fresh.execute("COMMIT")
    finally:
        src.close()
    return result


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [str(name) for (name,) in rows]


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, int]]:
    """(name, declared type, primary-key position) of each column."""
    return [(str(r[1]), str(r[2]).upper(), int(r[5])) for r in conn.execute(f"PRAGMA table_info({_q(table)})")]


def _copy_table(src: sqlite3.Connection, dst: sqlite3.Connection, table: str, unreadable: list[str]) -> int:
    try:
        src_columns = {name for name, _, _ in _columns(src, table)}
    except sqlite3.Error as exc:
        unreadable.append(f"{table}: its definition cannot be read ({exc})")
        return 0
    if not src_columns:
        unreadable.append(f"{table}: not in the damaged file")
        return 0
    dst_columns = _columns(dst, table)
    names = [name for name, _, _ in dst_columns if name in src_columns]
    keys = [name for name, _, pk in sorted(dst_columns, key=lambda c: c[2]) if pk and name in src_columns]
    insert = f"INSERT OR IGNORE INTO {_q(table)} ({', '.join(map(_q, names))}) VALUES ({', '.join('?' * len(names))})"
    if _has_rowid(dst, table):
        # an INTEGER PRIMARY KEY is the rowid itself; otherwise the rowids are copied too (they order the rows)
        primary = [(name, kind) for name, kind, pk in dst_columns if pk]
        alias = len(primary) == 1 and primary[0][1] == "INTEGER" and primary[0][0] in src_columns
        if not alias:
            insert = insert.replace(f"({', '.join(map(_q, names))})", f"(rowid, {', '.join(map(_q, names))})", 1)
            insert = insert.replace("VALUES (", "VALUES (?, ", 1)
        rows = _rowid_rows(src, table, names, unreadable)
        copied = 0
        for rowid, values in rows:
            dst.execute(insert, values if alias else (rowid, *values))
            copied += 1
        return copied
    copied = 0
    for values in _keyed_rows(src, table, names, keys or names, unreadable):
        copied += dst.execute(insert, values).rowcount
    return copied


def _rowid_rows(
    src: sqlite3.Connection, table: str, names: list[str], unreadable: list[str]
) -> Iterator[tuple[int, tuple[object, ...]]]:
    """(rowid, values) of every readable row, in rowid order, skipping damaged pages."""
    select = f"SELECT rowid, {', '.join(map(_q, names))} FROM {_q(table)} WHERE rowid >= ? ORDER BY rowid LIMIT ?"
    start = -MAX_ROWID
    while True:
        last: int | None = None
        try:
            got = 0
            for row in src.execute(select, (start, CHUNK_ROWS)):
                last, got = int(row[0]), got + 1
                yield last, tuple(row[1:])
            if got < CHUNK_ROWS or last is None:
                return
            start = last + 1
            continue
        except sqlite3.Error as exc:
            failed_at, error = (start if last is None else last + 1), exc
        resume = _next_readable(src, select, failed_at)
        gap = f"rowids {failed_at} to {resume - 1}" if resume is not None else f"rowids from {failed_at} on"
        unreadable.append(f"{table}: {gap} ({error})")
        if resume is None:
            return
        start = resume


def _next_readable(src: sqlite3.Connection, select: str, failed_at: int) -> int | None:
    """The first rowid at or after ``failed_at`` from which a read succeeds (None: none does)."""

    def reads(at: int) -> tuple[bool, int | None]:  # (the read succeeded, the rowid found at ``at`` or after)
        try:
            row = src.execute(select, (at, 1)).fetchone()
        except sqlite3.Error:
            return False, None
        return True, None if row is None else int(row[0])

    bad, step = failed_at, 1
    while True:  # ahead by 1, 2, 4, ... until a read succeeds
        good = min(failed_at + step, MAX_ROWID)
        if reads(good)[0]:
            break
        if good == MAX_ROWID:
            return None
        bad, step = good, step * 2
    while good - bad > 1:  # back by bisection: the first position that reads
        mid = (bad + good) // 2
        if reads(mid)[0]:
            good = mid
        else:
            bad = mid
    return reads(good)[1]


def _keyed_rows(
    src: sqlite3.Connection, table: str, names: list[str], keys: list[str], unreadable: list[str]
) -> Iterator[tuple[object, ...]]:
    """Rows of a table without rowids: forwards in key order until a read fails, then backwards."""
    columns = ", ".join(map(_q, names))
    for direction in ("ASC", "DESC"):
        order = ", ".join(f"{_q(k)} {direction}" for k in keys)
        try:
            for row in src.execute(f"SELECT {columns} FROM {_q(table)} ORDER BY {order}"):
                yield tuple(row)
            return  # read to the end: nothing lost
        except sqlite3.Error as exc:
            if direction == "DESC":
                unreadable.append(f"{table}: the rows between the two damaged ends ({exc})")


def _has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    try:
        conn.execute(f"SELECT rowid FROM {_q(table)} LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
