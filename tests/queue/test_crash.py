"""kill -9 while appending: every event whose append returned is in the store afterwards."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.queue.conftest import OpenQueue

APPENDER = Path(__file__).with_name("crash_appender.py")
ROUNDS = 3
MIN_ACKED = 200  # kill only after this many acknowledged events, at a random moment after
STARTUP_DEADLINE = 30.0


def run_and_kill(db: Path, prefix: str) -> list[str]:
    """Run the appender, SIGKILL it mid-stream, return every id it printed (= acknowledged)."""
    proc = subprocess.Popen(
        [sys.executable, str(APPENDER), str(db), prefix],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert proc.stdout is not None
    acked: list[str] = []
    deadline = time.monotonic() + STARTUP_DEADLINE
    try:
        assert proc.stdout.readline().strip() == "ready"
        while len(acked) < MIN_ACKED and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break  # the appender died on its own: the assertion below says so
            acked.append(line.strip())
        time.sleep(random.uniform(0.0, 0.05))  # land anywhere: mid-batch, mid-commit, mid-print
        proc.send_signal(signal.SIGKILL)
        acked.extend(line.strip() for line in proc.stdout if line.endswith("\n"))  # whole lines only
    finally:
        proc.kill()
        proc.wait()
    assert len(acked) >= MIN_ACKED, "the appender did not get going"
    return acked


async def test_every_acknowledged_append_survives_kill_9(open_queue: OpenQueue, tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    acked: list[str] = []
    for round_ in range(ROUNDS):  # the same file: each restart recovers the previous crash
        acked += run_and_kill(db, f"r{round_}")

    queue = await open_queue(db)
    stored: set[str] = set()
    while jobs := await queue.claim("lambda", 5_000, 60.0):
        stored.update(job.message_id for job in jobs)

    missing = set(acked) - stored
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    assert await queue.depth() == len(stored)
