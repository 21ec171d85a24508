"""What only the SQLite store has: a file that survives restarts, group commit, retention limits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from eventrelay.core.errors import StorageError
from eventrelay.core.outcome import Category
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
from tests.deliverylog.records import BASE_TIME as T
from tests.deliverylog.records import attempt


@asynccontextmanager
async def opened(path: Path, **limits: Any) -> AsyncIterator[SQLiteDeliveryLog]:
    """A started log on ``path`` (``max_age``, ``max_attempts``, ``max_bodies``), closed at the end."""
    log = SQLiteDeliveryLog(path, **limits)
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def prune_all(log: SQLiteDeliveryLog, now: float) -> None:
    """Prune step by step until nothing is left to remove."""
    while await log.prune(now=now):
        pass


async def test_history_survives_a_restart(tmp_path: Path) -> None:
    async with opened(tmp_path / "log.db") as log:
        await log.record([attempt("m1", Category.EXECUTION_ERROR, status="failed", log_tail="boom from handler")])

    async with opened(tmp_path / "log.db") as again:
        (row,) = await again.deliveries()
        assert (row.message_id, row.status, row.category) == ("m1", "failed", Category.EXECUTION_ERROR)
        (rec,) = await again.attempts("m1")
        assert rec.log_tail == "boom from handler"


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    async with opened(tmp_path / "log.db"):
        pass
    with sqlite3.connect(tmp_path / "log.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_concurrent_writers_share_commits_and_lose_nothing(tmp_path: Path) -> None:
    async with opened(tmp_path / "log.db") as log:
        await asyncio.gather(
            *(log.record([attempt(f"m{i}-{j}", Category.DELIVERED, at=T + i) for j in range(5)]) for i in range(400))
        )
        assert len(await log.deliveries(limit=10_000)) == 2000
        stats = await log.stats("lambda-prod", T - 10, T + 1000)
        assert stats.counts["delivered"] == 2000


async def test_another_process_can_read_while_the_server_writes(tmp_path: Path) -> None:
    async with opened(tmp_path / "log.db") as server, opened(tmp_path / "log.db") as cli:
        await server.record([attempt("m1", Category.TIMEOUT, status="failed")])
        assert [r.message_id for r in await cli.deliveries()] == ["m1"]
        assert await cli.redriven("lambda-prod", None, at=T + 5) == 1
        assert [r.status for r in await server.deliveries()] == ["retrying"]


async def test_retention_drops_attempts_older_than_max_age(tmp_path: Path) -> None:
    now = time.time()  # the writer also prunes on its own, by the real clock
    async with opened(tmp_path / "log.db", max_age=3600) as log:
        await log.record([attempt(f"old{i}", Category.DELIVERED, at=now - 7200 + i) for i in range(10)])
        await log.record([attempt(f"new{i}", Category.DELIVERED, at=now - 60 + i) for i in range(3)])
        await log.record([attempt("stuck", Category.TIMEOUT, status="retrying", at=now - 7200)])
        await prune_all(log, now)
        rows = {r.message_id for r in await log.deliveries(limit=100)}
        assert rows == {"new0", "new1", "new2", "stuck"}  # an event still retrying keeps its row
        assert await log.attempts("old0") == []
        assert len(await log.attempts("new0")) == 1


async def test_retention_keeps_at_most_max_attempts_rows_newest_first(tmp_path: Path) -> None:
    async with opened(tmp_path / "log.db", max_attempts=50) as log:
        await log.record([attempt(f"m{i:03}", Category.DELIVERED, at=T + i) for i in range(120)])
        await prune_all(log, T + 200)
        kept = sorted(r.message_id for r in await log.deliveries(limit=1000))
        assert kept == [f"m{i:03}" for i in range(70, 120)]
        assert await log.attempts("m069") == []


async def test_event_bodies_are_kept_on_the_newest_failures_only(tmp_path: Path) -> None:
    async with opened(tmp_path / "log.db", max_bodies=5) as log:
        await log.record([attempt(f"e{i}", Category.EXECUTION_ERROR, at=T + i) for i in range(12)])
        await prune_all(log, T + 20)
        with_body = [s.message_id for s in await log.samples("lambda-prod", limit=100) if s.event]
        assert with_body == ["e11", "e10", "e9", "e8", "e7"]
        assert len(await log.samples("lambda-prod", limit=100)) == 12  # the attempts themselves stay


async def test_an_unopenable_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "log.db").mkdir()
    log = SQLiteDeliveryLog(tmp_path / "log.db")
    with pytest.raises(StorageError, match="delivery log"):
        await log.start()
    await log.close()


async def test_using_a_closed_log_is_a_storage_error(tmp_path: Path) -> None:
    log = SQLiteDeliveryLog(tmp_path / "log.db")
    with pytest.raises(StorageError, match="not started"):
        await log.deliveries()


async def test_a_file_without_the_batch_columns_gets_them_and_keeps_its_history(tmp_path: Path) -> None:
    from eventrelay.deliverylog.sqlite.schema import ADDED_COLUMNS

    path = tmp_path / "log.db"
    async with opened(path) as log:
        await log.record([attempt("m-old", Category.TIMEOUT, at=T)])
    with sqlite3.connect(path) as conn:  # as a file written before batches: without those columns
        for table, column in ADDED_COLUMNS:
            if column.split()[0].startswith("batch_") or column.startswith("warning"):
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column.split()[0]}")

    async with opened(path) as log:
        [old] = await log.attempts("m-old")
        assert (old.category, old.batch_id, old.warning) == (Category.TIMEOUT, None, None)
        batched = attempt("m-new", Category.DELIVERED, at=T + 1)
        batched.batch_id, batched.batch_size, batched.batch_bytes = "b1", 2, 300
        await log.record([batched])
        [new] = await log.attempts("m-new")
        assert (new.batch_id, new.batch_size, new.batch_bytes) == ("b1", 2, 300)


async def test_a_file_of_the_layout_before_filters_and_replays_gets_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with opened(path) as log:
        await log.record([attempt("m1", at=T)])
    conn = sqlite3.connect(path)  # back to the layout without filter and replay columns
    for table in ("attempts", "deliveries"):
        conn.execute("DROP INDEX IF EXISTS deliveries_replay")
        conn.execute(f"ALTER TABLE {table} DROP COLUMN filter")
        conn.execute(f"ALTER TABLE {table} DROP COLUMN replay")
    conn.commit()
    conn.close()

    async with opened(path) as log:
        await log.record([attempt("m2", Category.FILTERED, at=T + 1, filter="only: true", replay="rp_x")])
        rows = {r.message_id: r for r in await log.deliveries()}
    assert (rows["m1"].filter, rows["m1"].replay) == (None, None)
    assert (rows["m2"].status, rows["m2"].filter, rows["m2"].replay) == ("filtered", "only: true", "rp_x")
