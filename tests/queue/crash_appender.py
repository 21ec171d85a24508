"""Appends events forever and prints each messageId once ``append`` has returned.

Run by test_crash.py, which kills this process with SIGKILL at a random moment: every id
printed must be found in the store afterwards.  Usage: python crash_appender.py DB_PATH PREFIX
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from eventrelay.core.records import Accepted
from eventrelay.queue.sqlite import SQLiteQueue

APPENDERS = 16  # concurrent "requests", so kills land during group commits
BATCH = 5


async def appender(queue: SQLiteQueue, prefix: str, worker: int) -> None:
    for n in range(1_000_000):
        ids = [f"{prefix}-{worker}-{n}-{i}" for i in range(BATCH)]
        items = [
            Accepted(mid, "web", "track", time.time(), b'{"event":"%s"}' % mid.encode(), ("lambda",)) for mid in ids
        ]
        await queue.append(items)
        sys.stdout.write("".join(f"{mid}\n" for mid in ids))
        sys.stdout.flush()


async def main(path: Path, prefix: str) -> None:
    queue = SQLiteQueue(path, max_events=10_000_000, dedup_window=3600.0)
    await queue.start()
    print("ready", flush=True)
    await asyncio.gather(*(appender(queue, prefix, w) for w in range(APPENDERS)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
