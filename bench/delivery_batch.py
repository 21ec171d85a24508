"""Benchmark (issue 15): batches to Lambda vs one event per invoke, through the delivery engine.

    python bench/delivery_batch.py [--seconds 10] [--concurrency 64] [--latency 0.1] [--batch 100]

The stub Invoke endpoint of delivery_invoke.py (a separate process) answers every invoke after
``--latency`` (100 ms). In this process, twice in a row, the embedded default's delivery path: a
SQLite queue filled beforehand with a backlog, the SQLite delivery log, the DeliveryEngine with one
aws_lambda destination at ``--concurrency`` invokes in flight (64, the default):

1. one event per invoke (``AwsLambdaDestination``, the default);
2. ``batch: {max_events: --batch, max_wait: 1s}`` (``BatchingAwsLambdaDestination``).

Each runs for ``--seconds`` or until its backlog (enough for its Little's law bound, at most
``--max-backlog``) is delivered. Printed for each: events delivered
per second, eventrelay's CPU per delivered event (this process: event loop, queue and log writer
threads; the stub's CPU is not counted), invocations per 1,000 events (counted on the wire by the
destination's HTTP transport), and Little's law's bound (in flight / latency x events per invoke).
Ratios, batch vs single: events/s (target >= 20x) and CPU per event (target <= 0.25x).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from delivery_invoke import BODY, ROLE_ARN, bench_env, start_stub

FILL_CHUNK = 1_000  # events per queue append while filling the backlog
POLL = 0.05  # seconds between looks at the delivered counter
HEADROOM = 1.5  # a run's backlog: this much more than Little's law lets it deliver in its time ...
MAX_BACKLOG = 150_000  # ... up to this many events (filling takes a few seconds; a run may end sooner)


@dataclasses.dataclass
class Result:
    label: str
    delivered: int
    seconds: float
    cpu_seconds: float
    invokes: int
    bound: float  # Little's law: events/s at most

    @property
    def per_second(self) -> float:
        return self.delivered / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / max(1, self.delivered) * 1e6

    @property
    def invokes_per_1000(self) -> float:
        return self.invokes / max(1, self.delivered) * 1000


class CountingTransport:
    """The destination's HTTP transport, counting the requests it carries (the invocations)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests = 0

    async def handle(self, request: Any) -> Any:
        self.requests += 1
        return await self.inner.handle(request)


def destination(url: str, batch: int | None, concurrency: int, transport: CountingTransport) -> Any:
    from eventrelay.destinations.aws_lambda.batching import BatchingAwsLambdaDestination
    from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
    from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings

    values: dict[str, Any] = {"lambda": "bench-fn", "region": "us-west-2", "role_address": ROLE_ARN}
    values["endpoint_url"] = url
    if batch is not None:
        values["batch"] = {"max_events": batch, "max_wait": "1s"}
    settings = AwsLambdaSettings.model_validate(values)
    options: dict[str, Any] = {"external_id": "ws_bench", "concurrency": concurrency, "transport": transport}
    if settings.batch is not None:
        return BatchingAwsLambdaDestination("bench", settings, settings.batch, **options)
    return AwsLambdaDestination("bench", settings, **options)


async def fill(queue: Any, name: str, events: int) -> None:
    import orjson

    from eventrelay.core.records import Accepted

    event = orjson.loads(BODY)
    now = time.time()
    for start in range(0, events, FILL_CHUNK):
        items = []
        for n in range(start, min(events, start + FILL_CHUNK)):
            mid = f"{name}-{n:09d}"
            body = orjson.dumps({**event, "messageId": mid})
            items.append(Accepted(mid, "bench", "track", now, body, (name,)))
        await queue.append(items)


async def run(url: str, label: str, batch: int | None, args: argparse.Namespace) -> Result:
    from eventrelay.config.model import DeliveryPolicy
    from eventrelay.core import telemetry
    from eventrelay.delivery.engine import DeliveryEngine
    from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
    from eventrelay.destinations.http_client import HttpClient
    from eventrelay.queue.sqlite import SQLiteQueue

    name = f"bench-{label}"
    per_invoke = batch or 1
    bound = args.concurrency / args.latency * per_invoke
    backlog = min(int(bound * args.seconds * HEADROOM), args.max_backlog)
    with tempfile.TemporaryDirectory(prefix="eventrelay-bench-batch-") as tmp:
        queue = SQLiteQueue(Path(tmp) / "queue.db", max_events=backlog + 1)
        log = SQLiteDeliveryLog(Path(tmp) / "deliverylog.db")
        await queue.start()
        await log.start()
        await fill(queue, name, backlog)
        http = HttpClient(url, max_connections=args.concurrency)
        transport = CountingTransport(http)
        dest = destination(url, batch, args.concurrency, transport)
        policy = DeliveryPolicy(concurrency=args.concurrency, timeout=10.0)
        engine = DeliveryEngine(queue, log, {name: (dest, policy)})

        def delivered() -> int:
            value = telemetry.REGISTRY.get_sample_value("eventrelay_events_delivered_total", {"destination": name})
            return int(value or 0)

        started, cpu = time.perf_counter(), time.process_time()
        await engine.start()
        deadline = started + args.seconds
        while time.perf_counter() < deadline and delivered() < backlog:  # noqa: ASYNC110 (polls a counter)
            await asyncio.sleep(POLL)
        elapsed, used, count = time.perf_counter() - started, time.process_time() - cpu, delivered()
        invokes = transport.requests
        await engine.stop(wait_seconds=5.0)
        await dest.close()
        await http.close()
        await log.close()
        await queue.close()
    return Result(label, count, elapsed, used, invokes, bound)


async def main(args: argparse.Namespace) -> None:
    proc, url = start_stub(args.latency)
    try:
        bench_env(url)
        single = await run(url, "single", None, args)
        batched = await run(url, f"batch{args.batch}", args.batch, args)
    finally:
        proc.terminate()
        proc.wait()
    print(
        f"delivery_batch: {args.latency * 1000:g} ms Invoke latency, {args.concurrency} invokes in flight,"
        f" {args.seconds:g} s each, SQLite queue and log"
    )
    for r in (single, batched):
        print(
            f"  {r.label:12s} {r.per_second:9,.0f} events/s  CPU {r.cpu_us:6.0f} us/event"
            f"  {r.invokes_per_1000:7.1f} invokes per 1,000 events  ({r.delivered:,} delivered;"
            f" Little's law bound {r.bound:,.0f}/s)"
        )
    speed = batched.per_second / single.per_second
    cpu = batched.cpu_us / single.cpu_us
    print(f"  ratio events/s batch / single      {speed:7.1f}x  (target >= 20x: {'met' if speed >= 20 else 'NOT met'})")
    print(f"  ratio CPU/event batch / single     {cpu:7.3f}   (target <= 0.25: {'met' if cpu <= 0.25 else 'NOT met'})")
    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work skews rates)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--max-backlog", type=int, default=MAX_BACKLOG)
    import uvloop

    uvloop.run(main(parser.parse_args()))
