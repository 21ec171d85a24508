"""``eventrelay recover`` on a damaged delivery log: the readable attempts are saved into a fresh
file, the damaged one is kept aside, an intact or absent file is left alone."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from pathlib import Path

from tests.deliverylog.records import attempt
from tests.support.serve import run_eventrelay

from eventrelay.core.outcome import Category
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog

ATTEMPTS = 1_000


async def _log_with_attempts(path: Path) -> None:
    log = SQLiteDeliveryLog(path)
    await log.start()
    try:
        await log.record([attempt(f"m{i}", Category.EXECUTION_ERROR, log_tail="boom " * 40) for i in range(ATTEMPTS)])
    finally:
        await log.close()


def _damage_a_leaf(path: Path, table: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        sql = "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno"
        pages = [p for (p,) in conn.execute(sql, (table,))]
    page = pages[len(pages) // 2]
    with path.open("r+b") as f:
        f.seek((page - 1) * 4096)
        f.write(random.Random(page).randbytes(4096))


def test_recover_saves_the_readable_attempts_of_a_damaged_delivery_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_log_with_attempts(data / "deliverylog.db"))
    _damage_a_leaf(data / "deliverylog.db", "attempts")
    config = tmp_path / "eventrelay.yaml"
    config.write_text(f"storage: {{backend: sqlite, path: {data}}}\n")

    done = run_eventrelay(["recover", "--config", str(config)], cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert f"{data / 'queue.db'}: not made yet" in done.stdout
    assert f"{data / 'deliverylog.db'} fails its integrity check" in done.stdout
    with contextlib.closing(sqlite3.connect(data / "deliverylog.db")) as conn:
        (saved,) = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert ATTEMPTS - 20 <= saved < ATTEMPTS
    assert f"saved {saved} attempts and {ATTEMPTS} deliveries" in done.stdout
    assert [p.name for p in data.glob("deliverylog.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
