"""A delivery process killed with -9 while holding claimed jobs loses none of them."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid

from eventrelay.core.records import Accepted, Job

from .conftest import QueueFactory

CLAIMER = """
import asyncio, sys
from eventrelay.queue.jetstream import JetStreamQueue

async def main():
    queue = JetStreamQueue([sys.argv[1]], sys.argv[2], 1, 100000, 3600.0)
    await queue.start()
    jobs = await queue.claim("lambda", 100, 1.0)
    print(len(jobs), flush=True)
    await asyncio.sleep(3600)  # killed here, jobs unsettled

asyncio.run(main())
"""
DEADLINE = 30.0


async def test_jobs_of_a_killed_delivery_process_return_after_their_lease(
    make_queue: QueueFactory, nats_url: str
) -> None:
    queue = await make_queue()
    items = [
        Accepted(str(uuid.uuid4()), "web", "track", time.time(), b'{"type":"track"}', ("lambda",)) for _ in range(20)
    ]
    await queue.append(items)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLAIMER, nats_url, queue.names.stream, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    claimed = int(await asyncio.wait_for(proc.stdout.readline(), DEADLINE))
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert claimed == 20

    back: dict[str, Job] = {}
    deadline = time.monotonic() + DEADLINE
    while len(back) < 20 and time.monotonic() < deadline:
        back.update((j.message_id, j) for j in await queue.claim("lambda", 100, 30.0))
        await asyncio.sleep(0.1)

    assert set(back) == {i.message_id for i in items}
    assert {j.attempts for j in back.values()} == {0}  # a lapsed lease is not a failed attempt
