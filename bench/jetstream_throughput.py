"""Events/s through eventrelay's JetStream backend, against raw nats-py in the same run.

    /work/venv/bin/python bench/jetstream_throughput.py [--events 20000] [--batch 100]

Starts one nats-server (JetStream, file store, default sync) on a free port, then measures:

1. ceiling: raw nats-py ``js.publish`` of 1.2 KB messages (``--batch`` in flight) and raw
   ``pull_subscribe().fetch(batch)`` + ack of them;
2. eventrelay ingest: ``JetStreamQueue.append`` of ``--events`` events in batches of ``--batch``
   (as a Segment batch), against the raw publish rate;
3. eventrelay delivery: 1, then 2, delivery *processes* drain that backlog: claim 100, record
   the attempts in the JetStream delivery log, ack each (a no-op destination: this measures the
   queue and the log, not Lambda), against the raw fetch + ack rate.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.jetstream.natsserver import single_server, wait_for_jetstream

from eventrelay.core.outcome import Category
from eventrelay.core.records import Accepted, AttemptRecord
from eventrelay.deliverylog.jetstream import JetStreamDeliveryLog
from eventrelay.queue.jetstream import JetStreamQueue

BODY = b'{"type":"track","event":"Order Completed","properties":{"pad":"' + b"x" * 1100 + b'"}}'  # ~1.2 KB
CLAIMERS_PER_PROCESS = 2  # concurrent claim loops in one delivery process (the engine runs several)
IDLE_MIN, IDLE_MAX = 0.01, 0.5  # idle poll backoff, as the delivery engine's worker


async def raw_rates(url: str, events: int, batch: int) -> tuple[float, float]:
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30)
    await js.add_stream(name="RAW", subjects=["raw.>"])
    started = time.perf_counter()
    for i in range(0, events, batch):
        await asyncio.gather(*(js.publish("raw.x", BODY, headers={"Nats-Msg-Id": f"r{i + j}"})
                               for j in range(min(batch, events - i))))  # fmt: skip
    publish = events / (time.perf_counter() - started)
    sub = await js.pull_subscribe("raw.x", "raw")
    got = 0
    started = time.perf_counter()
    while got < events:
        msgs = await sub.fetch(batch, timeout=5)
        await asyncio.gather(*(m.ack() for m in msgs))
        got += len(msgs)
    await nc.flush()
    fetch = events / (time.perf_counter() - started)
    await nc.close()
    return publish, fetch


def delivery_process(url: str, stream: str, data: str, total: int, shared: dict[str, Any]) -> None:
    asyncio.run(_deliver(url, stream, data, total, shared))


async def _deliver(url: str, stream: str, data: str, total: int, shared: dict[str, Any]) -> None:
    """One delivery process: claim 100, record the attempts in the delivery log, ack; until all done."""
    queue = JetStreamQueue([url], stream, 1, 10_000_000, 600.0)
    log = JetStreamDeliveryLog([url], stream, 1, Path(data))
    await queue.start()
    await log.start()
    done, ready, go = shared["done"], shared["ready"], shared["go"]
    with ready.get_lock():
        ready.value += 1
    await asyncio.to_thread(go.wait)

    async def loop() -> None:
        idle = IDLE_MIN
        while done.value < total:
            jobs = await queue.claim("noop", 100, 30.0)
            if not jobs:
                await asyncio.sleep(idle)
                idle = min(idle * 2, IDLE_MAX)
                continue
            idle = IDLE_MIN
            now = time.time()
            await log.record([
                AttemptRecord(j.message_id, j.destination, j.source, j.call_type, j.attempts + 1, "delivered",
                              Category.DELIVERED, now, 0.1, j.received_at) for j in jobs
            ])  # fmt: skip
            await asyncio.gather(*(queue.ack(j) for j in jobs))
            with done.get_lock():
                done.value += len(jobs)

    await asyncio.gather(*(loop() for _ in range(CLAIMERS_PER_PROCESS)))
    await queue.close()
    await log.close()


async def eventrelay_rates(url: str, events: int, batch: int, processes: int, root: Path) -> tuple[float, float]:
    """Ingest ``events`` (timed), then drain them with ``processes`` delivery processes (timed)."""
    stream = f"B{processes}"
    queue = JetStreamQueue([url], stream, 1, 10_000_000, 600.0)
    await queue.start()
    await queue.claim("noop", 1, 30.0)  # make the consumer (AckWait 30 s) before anything else
    ctx = multiprocessing.get_context("spawn")
    shared: dict[str, Any] = {"done": ctx.Value("q", 0), "ready": ctx.Value("i", 0), "go": ctx.Event()}
    workers = [
        ctx.Process(target=delivery_process, args=(url, stream, str(root / f"d{n}"), events, shared))
        for n in range(processes)
    ]
    for w in workers:
        w.start()
    while shared["ready"].value < processes:  # noqa: ASYNC110 - a counter in shared memory, not an event
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    for i in range(0, events, batch):
        items = [Accepted(str(uuid.uuid4()), "web", "track", time.time(), BODY, ("noop",))
                 for _ in range(min(batch, events - i))]  # fmt: skip
        await queue.append(items)
    ingest = events / (time.perf_counter() - started)
    started = time.perf_counter()
    shared["go"].set()
    while shared["done"].value < events:  # noqa: ASYNC110 - a counter in shared memory, not an event
        await asyncio.sleep(0.005)
    drain = events / (time.perf_counter() - started)
    for w in workers:
        w.join(timeout=30)
    await queue.close()
    return ingest, drain


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-jetstream-"))
    server = single_server(root / "nats")
    try:
        await wait_for_jetstream([server.url])
        publish, fetch = await raw_rates(server.url, args.events, args.batch)
        print(f"ceiling  raw nats-py publish ({args.batch} in flight): {publish:,.0f} msg/s")
        print(f"ceiling  raw nats-py fetch({args.batch}) + ack:          {fetch:,.0f} msg/s")
        for processes in (1, 2):
            ingest, drain = await eventrelay_rates(server.url, args.events, args.batch, processes, root)
            print(f"eventrelay ingest  JetStreamQueue.append ({args.batch}/batch):  {ingest:,.0f} events/s "
                  f"({ingest / publish:.0%} of raw publish)")  # fmt: skip
            print(f"eventrelay deliver {processes} process(es) claim + log + ack: {drain:,.0f} events/s "
                  f"({drain / fetch:.0%} of raw fetch + ack)")  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
