"""Benchmark: a backlog of 1,000,000 events with the destination down, then up (issue 8 item 6).
Targets: the eventrelay process's RSS stays under 200 MB; the drain rate is reported.

1. ``eventrelay serve`` (SQLite queue and log) with one aws_lambda destination whose endpoint refuses
   connections (nothing listens on its port): every attempt is an ``aws_error`` and is retried.
2. This script appends ``--events`` events through the Tracking API (``/v1/batch`` of 100) and reports
   the accept rate.
3. The zero-latency stub (from ``end_to_end.py``) starts on the destination's port: the backlog drains.
   Reported: time until every event arrived, drain rate, peak RSS (VmHWM) of the eventrelay process.
Ceiling measured in the same run: unsigned POSTs straight to the stub at 64 in flight (the most
invokes/s this machine's loopback and stub can take while nothing else runs).

The destination's ``backoff_cap`` is 10 s here (default 5 min) so that events failed during the
outage are due again within seconds of the recovery; the drain rate then measures throughput, not
the retry schedule.

    python bench/backlog.py [--events 1000000] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from end_to_end import (
    auth_header,
    client,
    eventrelay_process,
    fetch_json,
    free_port,
    stub_process,
    write_config,
)

BATCH = 100  # events per /v1/batch request
RSS_LIMIT_MB = 200


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def batch_body(prefix: str, start: int) -> bytes:
    return orjson.dumps(
        {
            "batch": [
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"user-{(start + i) % 1000}",
                    "messageId": f"{prefix}-{start + i}",
                    "properties": {"n": start + i, "total": 12.5, "currency": "USD"},
                }
                for i in range(BATCH)
            ]
        }
    )


async def append_all(url: str, events: int, connections: int, proc: subprocess.Popen[bytes]) -> float:
    prefix = uuid.uuid4().hex[:8]
    batches = iter(range(0, events, BATCH))
    rejected = 0
    peak = 0.0
    started = time.perf_counter()

    async def worker(http: Any) -> None:
        nonlocal rejected
        for start in batches:
            body = batch_body(prefix, start)
            while True:
                resp = await http.request("POST", "/v1/batch", auth_header(), body)
                if resp.status == 200:
                    break
                rejected += 1
                await asyncio.sleep(float(resp.header("Retry-After") or "1"))

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_mb(proc.pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    http = client(url, connections)
    await asyncio.gather(*(worker(http) for _ in range(connections)))
    await http.close()
    sampler.cancel()
    elapsed = time.perf_counter() - started
    print(
        f"appended {events} events in {elapsed:.1f} s: {events / elapsed:,.0f} events/s accepted "
        f"(destination down; {rejected} batches answered 429 and resent); RSS sampled peak {peak:.0f} MB"
    )
    return elapsed


async def drain(stub_url: str, events: int, proc: subprocess.Popen[bytes], limit: float) -> tuple[float, int]:
    started = time.perf_counter()
    unique = 0
    next_report = started + 10
    while time.perf_counter() - started < limit:
        counts = await fetch_json(f"{stub_url}/count")
        unique = counts["unique"]
        if unique >= events:
            break
        if time.perf_counter() > next_report:
            print(
                f"  ... {unique} delivered after {time.perf_counter() - started:.0f} s, RSS {rss_mb(proc.pid):.0f} MB"
            )
            next_report += 10
        await asyncio.sleep(0.25)
    return time.perf_counter() - started, unique


async def stub_ceiling(stub_url: str, seconds: float = 3.0, inflight: int = 64) -> float:
    body = orjson.dumps({"messageId": "ceiling", "type": "track"})
    done = 0
    deadline = time.perf_counter() + seconds
    http = client(stub_url, inflight)

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await http.request("POST", "/2015-03-31/functions/ceiling/invocations", {}, body)
            done += 1

    await asyncio.gather(*(loop() for _ in range(inflight)))
    await http.close()
    return done / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1_000_000, help="backlog size (default 1,000,000)")
    p.add_argument("--connections", type=int, default=16, help="ingest connections (default 16)")
    p.add_argument("--drain-timeout", type=float, default=3600.0, help="give up draining after (s)")
    args = p.parse_args()
    stub_port = free_port()
    with tempfile.TemporaryDirectory(prefix="eventrelay-backlog-") as tmp:
        config = write_config(
            Path(tmp),
            f"http://127.0.0.1:{stub_port}",
            concurrency=256,
            backoff_cap="10s",
            max_events=max(2_000_000, args.events * 2),
        )
        with eventrelay_process(config) as (url, proc):
            print(
                f"backlog of {args.events} events, destination down (connection refused), then up; "
                f"2 cores shared by eventrelay, the stub and this load generator"
            )
            uvloop.run(append_all(url, args.events, args.connections, proc))
            print(f"RSS after the backlog: {rss_mb(proc.pid):.0f} MB (peak so far {rss_mb(proc.pid, 'VmHWM'):.0f} MB)")
            with stub_process(stub_port) as stub_url:
                elapsed, unique = uvloop.run(drain(stub_url, args.events, proc, args.drain_timeout))
                invokes = uvloop.run(fetch_json(f"{stub_url}/count"))["invokes"]
                peak = rss_mb(proc.pid, "VmHWM")
                ceiling = uvloop.run(stub_ceiling(stub_url))
        print(
            f"drained {unique}/{args.events} events in {elapsed:.1f} s: {unique / elapsed:,.0f} events/s "
            f"({invokes} invokes incl. retries of attempts cut by the recovery)"
        )
        print(
            f"ceiling: unsigned POSTs straight to the stub, 64 in flight: {ceiling:,.0f}/s "
            f"(drain = {unique / elapsed / ceiling:.2f} of it)"
        )
        print(
            f"peak RSS of eventrelay (VmHWM): {peak:.0f} MB; target < {RSS_LIMIT_MB} MB: "
            f"{'met' if peak < RSS_LIMIT_MB else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
