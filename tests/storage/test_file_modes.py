"""The store files are the owner's alone: created 0600 (and their WAL with them), in a 0700 directory."""

from __future__ import annotations

import stat
from pathlib import Path

from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
from eventrelay.queue.sqlite import SQLiteQueue


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_queue_and_delivery_log_files_are_created_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    queue = SQLiteQueue(data / "queue.db")
    log = SQLiteDeliveryLog(data / "deliverylog.db")
    await queue.start()
    await log.start()
    try:
        files = [data / "queue.db", data / "queue.db-wal", data / "deliverylog.db", data / "deliverylog.db-wal"]
        assert {f.name: _mode(f) for f in files if f.exists()} == {f.name: 0o600 for f in files if f.exists()}
        assert (data / "queue.db").exists() and (data / "deliverylog.db").exists()
        assert _mode(data) == 0o700
    finally:
        await queue.close()
        await log.close()
