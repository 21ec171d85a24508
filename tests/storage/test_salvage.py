"""``storage/salvage.py`` on real SQLite files with pages overwritten: every row off the damaged
pages is copied, the damaged file is left as it was."""

from __future__ import annotations

import contextlib
import hashlib
import random
import sqlite3
from pathlib import Path

from eventrelay.queue.sqlite.schema import connect
from eventrelay.storage.salvage import salvage

ROWS = 3_000


def _queue_file(path: Path) -> None:
    with contextlib.closing(connect(path)) as conn:
        conn.execute("BEGIN")
        for i in range(ROWS):
            conn.execute(
                "INSERT INTO jobs (destination, due_at, message_id, source, call_type, received_at, body) "
                "VALUES ('d', 0, ?, 's', 'track', 0, ?)",
                (f"m{i:05}", random.Random(i).randbytes(700)),
            )
            conn.execute("INSERT INTO dedup VALUES (?, 0)", (f"m{i:05}",))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _pages(path: Path, table: str, kind: str) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        sql = "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno"
        return [p for (p,) in conn.execute(sql, (table, kind))]


def _root(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?", (table,)).fetchone()
        return int(root)


def _overwrite(path: Path, *pages: int) -> None:
    with path.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * 4096)
            f.write(random.Random(page).randbytes(4096))


def test_rows_off_a_damaged_leaf_page_are_all_saved(tmp_path: Path) -> None:
    damaged = tmp_path / "queue.db"
    _queue_file(damaged)
    leaves = _pages(damaged, "jobs", "leaf")
    _overwrite(damaged, leaves[len(leaves) // 2], _pages(damaged, "dedup", "leaf")[3])
    before = hashlib.sha256(damaged.read_bytes()).hexdigest()

    with contextlib.closing(connect(tmp_path / "fresh.db")) as fresh:
        saved = salvage(damaged, fresh)
        ids = [m for (m,) in fresh.execute("SELECT message_id FROM jobs ORDER BY id")]

    assert ROWS - 10 <= saved.rows["jobs"] < ROWS  # a 4 KB page holds a few 700-byte jobs
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert saved.rows["dedup"] < ROWS and saved.rows["dedup"] > ROWS // 2  # both ends of the key order
    assert [u.split(":")[0] for u in saved.unreadable] == ["dedup", "jobs"]
    assert hashlib.sha256(damaged.read_bytes()).hexdigest() == before  # read-only: left as found


def test_a_damaged_interior_page_loses_only_the_rows_under_it(tmp_path: Path) -> None:
    damaged = tmp_path / "queue.db"
    _queue_file(damaged)
    interior = [p for p in _pages(damaged, "jobs", "internal") if p != _root(damaged, "jobs")]
    assert interior, "the table is too small to have interior pages below its root"
    _overwrite(damaged, interior[0])

    with contextlib.closing(connect(tmp_path / "fresh.db")) as fresh:
        saved = salvage(damaged, fresh)

    assert 0 < saved.rows["jobs"] < ROWS
    assert any(u.startswith("jobs: rowids") for u in saved.unreadable)


def test_an_empty_file_saves_nothing_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "queue.db").write_bytes(b"")
    with contextlib.closing(connect(tmp_path / "fresh.db")) as fresh:
        saved = salvage(tmp_path / "queue.db", fresh)
    assert set(saved.rows.values()) == {0} and {"jobs", "dedup"} <= set(saved.rows)
    assert saved.unreadable == [f"{table}: not in the damaged file" for table in sorted(saved.rows)]
