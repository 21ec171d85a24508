"""The group-commit writer the SQLite queue and delivery log share, on a real SQLite file with a
small store of its own: one commit for the calls of one loop iteration, a failing call refused
alone, fsync only where a call asks for it, a full disk as DiskFull, and the file named in errors."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from eventrelay.core.errors import DiskFull, StorageError
from eventrelay.storage.sqlite import connect
from eventrelay.storage.sqlite_writer import GroupCommitWriter


class Op:
    """A write of the test store: ``run`` on the writer's connection inside its transaction."""

    def __init__(
        self, run: Callable[[sqlite3.Connection], Any], *, durable: bool = False, rows: int = 1, bulk: bool = False
    ) -> None:
        self.run = run
        self.durable = durable
        self.rows = rows
        self.bulk = bulk  # deferrable, for the writer opened with ``deferrable=``


class Rows:
    """A store with one table ``t (v UNIQUE)``; its change is the rows a transaction added."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.committed_rows = 0
        self.tidied = 0

    def open(self) -> tuple[sqlite3.Connection, int]:
        conn = connect(self.path, synchronous="FULL", busy_timeout_ms=1_000, cache_kib=1_024)
        conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT UNIQUE)")
        (count,) = conn.execute("SELECT COUNT(*) FROM t").fetchone()
        return conn, int(count)

    def run(self, conn: sqlite3.Connection, ops: Sequence[Op]) -> tuple[list[object], int]:
        before = conn.total_changes
        outcomes = [op.run(conn) for op in ops]
        return outcomes, conn.total_changes - before

    def committed(self, change: int) -> None:
        self.committed_rows += change

    def tidy(self, conn: sqlite3.Connection) -> None:
        self.tidied += 1


def insert(value: str) -> Callable[[sqlite3.Connection], int]:
    return lambda conn: conn.execute("INSERT INTO t (v) VALUES (?)", (value,)).rowcount


def synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])  # 2 FULL, 1 NORMAL


Writer = GroupCommitWriter[Op, int]


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    writers: list[Writer] = []

    async def _open(*, max_rows: int = 100, deferrable: bool = False) -> tuple[Writer, list[int]]:
        seen: list[int] = []  # each committed change, as the event loop received it
        writer: Writer = GroupCommitWriter(
            Rows(tmp_path / "w.db"),
            what="the test file",
            thread_name="test-writer",
            max_rows=max_rows,
            on_commit=seen.append,
            deferrable=(lambda op: op.bulk) if deferrable else None,
        )
        await writer.start()
        writers.append(writer)
        return writer, seen

    yield _open
    for writer in writers:
        await writer.close()


async def test_calls_of_one_loop_iteration_share_one_commit(opened: Callable[..., Any]) -> None:
    writer, seen = await opened()
    results = await asyncio.gather(*(writer.submit(Op(insert(f"v{i}"))) for i in range(50)))
    assert results == [1] * 50
    assert (writer.commits, writer.operations) == (1, 50)
    assert seen == [0, 50]  # what open read, then the one commit


async def test_a_transaction_is_bounded_by_rows(opened: Callable[..., Any]) -> None:
    writer, _ = await opened(max_rows=3)
    await asyncio.gather(*(writer.submit(Op(insert(f"v{i}"), rows=2)) for i in range(3)))
    assert writer.commits == 3  # 2 + 2 > 3: one op per transaction (and never none)


async def test_deferrable_calls_wait_one_transaction_behind_the_others_and_no_more(
    opened: Callable[..., Any],
) -> None:
    """A claim handed over with many appends commits first, alone; the appends come in the next
    transaction (with whatever arrives meanwhile, so neither kind starves)."""
    writer, seen = await opened(deferrable=True)
    order: list[str] = []

    def mark(name: str) -> Callable[[sqlite3.Connection], int]:
        def run(conn: sqlite3.Connection) -> int:
            order.append(name)
            return insert(name)(conn)

        return run

    first = [writer.submit(Op(mark(f"bulk{i}"), bulk=True)) for i in range(5)]
    first.append(writer.submit(Op(mark("urgent0"))))
    await asyncio.gather(*first)
    assert order == ["urgent0", "bulk0", "bulk1", "bulk2", "bulk3", "bulk4"]
    assert seen[1:] == [1, 5]  # two transactions: the urgent call alone, then the bulk ones
    order.clear()
    seen.clear()
    # the split is made again for the next calls handed over together
    await asyncio.gather(writer.submit(Op(mark("bulk5"), bulk=True)), writer.submit(Op(mark("urgent1"))))
    assert order == ["urgent1", "bulk5"]


async def test_a_failing_call_is_refused_alone_and_the_others_commit(
    opened: Callable[..., Any], tmp_path: Path
) -> None:
    writer, seen = await opened()
    await writer.submit(Op(insert("taken")))
    outcomes = await asyncio.gather(
        writer.submit(Op(insert("a"))),
        writer.submit(Op(insert("taken"))),  # UNIQUE: fails the shared transaction
        writer.submit(Op(insert("b"))),
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and outcomes[2] == 1
    assert isinstance(outcomes[1], StorageError) and "the test file failed: UNIQUE" in str(outcomes[1])
    assert sum(seen) == 3
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert sorted(v for (v,) in conn.execute("SELECT v FROM t")) == ["a", "b", "taken"]


async def test_only_a_transaction_with_a_durable_call_is_fsynced(opened: Callable[..., Any]) -> None:
    writer, _ = await opened()
    assert await writer.submit(Op(synchronous)) == 1
    assert await writer.submit(Op(synchronous, durable=True)) == 2
    shared = await asyncio.gather(writer.submit(Op(synchronous)), writer.submit(Op(insert("x"), durable=True)))
    assert shared[0] == 2  # one durable call makes its whole transaction durable


async def test_a_full_disk_is_disk_full_and_writes_resume_when_space_returns(opened: Callable[..., Any]) -> None:
    writer, _ = await opened()
    pages = await writer.submit(Op(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0]))
    await writer.submit(Op(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}").fetchone()))

    with pytest.raises(DiskFull, match="the test file cannot grow: the disk is full"):
        await writer.submit(Op(insert("x" * 100_000)))

    await writer.submit(Op(lambda conn: conn.execute("PRAGMA max_page_count = 1000000").fetchone()))
    assert await writer.submit(Op(insert("x" * 100_000))) == 1


async def test_housekeeping_runs_between_batches(tmp_path: Path) -> None:
    store = Rows(tmp_path / "w.db")
    writer: Writer = GroupCommitWriter(store, what="the test file", thread_name="t", max_rows=10)
    await writer.start()
    await writer.submit(Op(insert("a")))
    await writer.submit(Op(insert("b")))
    await writer.close()
    assert (store.tidied, store.committed_rows) == (2, 2)


async def test_calls_before_start_and_after_close_are_refused(tmp_path: Path) -> None:
    writer: Writer = GroupCommitWriter(Rows(tmp_path / "w.db"), what="the test file", thread_name="t", max_rows=10)
    with pytest.raises(StorageError, match="the test file is not started"):
        writer.submit(Op(insert("a")))
    await writer.start()
    await writer.close()
    with pytest.raises(StorageError, match="the test file is closed"):
        writer.submit(Op(insert("a")))


async def test_a_file_that_cannot_open_is_a_storage_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "w.db").mkdir()
    writer: Writer = GroupCommitWriter(Rows(tmp_path / "w.db"), what="the test file", thread_name="t", max_rows=10)
    with pytest.raises(StorageError, match="the test file failed"):
        await writer.start()
    await writer.close()  # nothing to close: no error
