"""Writers of one SQLite file take turns through ``<file>-writelock`` (``storage/write_turns.py``):
while another holds the turn, a queue's write waits for it and goes on the moment it is released."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from eventrelay.core.records import Accepted
from eventrelay.queue.sqlite import SQLiteQueue
from eventrelay.storage.write_turns import WriteTurns

HELD = 0.5  # seconds the other writer keeps its turn


async def test_a_write_waits_for_the_turn_of_another_writer_and_no_longer(tmp_path: Path) -> None:
    queue = SQLiteQueue(tmp_path / "queue.db")
    await queue.start()
    other = WriteTurns(tmp_path / "queue.db")
    other.open()
    try:
        event = Accepted(str(uuid.uuid4()), "web", "track", time.time(), b"{}", ("lambda",))
        with other.turn():
            started = time.monotonic()
            append = asyncio.ensure_future(queue.append([event]))
            await asyncio.sleep(HELD)
            assert not append.done()  # waiting for the turn
            released = time.monotonic()
        assert await append == [True]
        assert time.monotonic() - released < 0.2  # woken at the release, not after a busy-handler sleep
        assert released - started >= HELD
    finally:
        other.close()
        await queue.close()
    assert (tmp_path / "queue.db-writelock").exists()
