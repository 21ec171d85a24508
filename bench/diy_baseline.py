"""Benchmark: eventrelay vs the do-it-yourself baseline (issue 8 item 7). Target: >= 4x.

The baseline is what a user might write instead of eventrelay: a small web app (Starlette, one
uvicorn worker) that calls boto3 ``lambda.invoke`` for every event in its thread pool before
answering, with the role assumed once through STS. Both face the same zero-latency AWS stub (from
``end_to_end.py``) and the same load: ``--events`` single track events over 64
connections as fast as they are answered. Throughput = events that reached the stub / time from
the first request to the last arrival (for eventrelay this includes draining its queue).

    python bench/diy_baseline.py [--events 5000] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backlog import stub_ceiling
from end_to_end import (
    ROLE,
    auth_header,
    bench_env,
    client,
    cpu_seconds,
    eventrelay_process,
    fetch_json,
    free_port,
    stub_process,
    track,
    wait_http,
    write_config,
)

TARGET = 4.0


# -- the DIY app (child process) ----------------------------------------------------------------


def diy_app(stub_url: str) -> Any:
    import boto3
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    sts = boto3.client("sts", region_name="us-west-2", endpoint_url=stub_url)
    creds = sts.assume_role(RoleArn=ROLE, RoleSessionName="diy", ExternalId="ws_bench")["Credentials"]
    lam = boto3.client(
        "lambda",
        region_name="us-west-2",
        endpoint_url=stub_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()
        return await asyncio.to_thread(_invoke, body)

    def _invoke(body: bytes) -> JSONResponse:
        lam.invoke(FunctionName="bench-fn", Payload=body)
        return JSONResponse({"success": True})

    return Starlette(
        routes=[
            Route("/v1/track", endpoint, methods=["POST"]),
            Route("/healthz", lambda r: JSONResponse({"ok": True})),
        ]
    )


def run_diy(port: int, stub_url: str) -> None:
    import uvicorn

    uvicorn.run(diy_app(stub_url), host="127.0.0.1", port=port, lifespan="off", access_log=False, log_level="warning")


# -- load ---------------------------------------------------------------------------------------


async def blast(url: str, events: int, connections: int, stub_url: str, tag: str) -> tuple[float, int]:
    """Send ``events`` as fast as answered; return (seconds until all reached the stub, arrived)."""
    ids = iter(range(events))
    before = (await fetch_json(f"{stub_url}/count"))["unique"]
    headers = auth_header()
    started = time.perf_counter()
    http = client(url, connections)
    path = urlsplit(url).path

    async def worker() -> None:
        for i in ids:
            await http.request("POST", path, headers, track(f"{tag}-{i}-{uuid.uuid4().hex[:6]}"))

    await asyncio.gather(*(worker() for _ in range(connections)))
    await http.close()
    arrived = 0
    deadline = time.perf_counter() + 300
    while time.perf_counter() < deadline:
        arrived = (await fetch_json(f"{stub_url}/count"))["unique"] - before
        if arrived >= events:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - started, arrived


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=5000, help="events per side (default 5000)")
    p.add_argument("--connections", type=int, default=64, help="client connections (default 64)")
    p.add_argument("--diy", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.diy:
        run_diy(int(args.diy[0]), args.diy[1])
        return
    with tempfile.TemporaryDirectory(prefix="eventrelay-diy-") as tmp, stub_process() as stub_url:
        port = free_port()
        diy = subprocess.Popen([sys.executable, __file__, "--diy", str(port), stub_url], env=bench_env())
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", diy)
            uvloop.run(blast(f"http://127.0.0.1:{port}/v1/track", 200, 8, stub_url, "warm-diy"))
            diy_s, diy_n = uvloop.run(
                blast(f"http://127.0.0.1:{port}/v1/track", args.events, args.connections, stub_url, "diy")
            )
        finally:
            diy.terminate()
            diy.wait(timeout=30)
        with eventrelay_process(write_config(Path(tmp), stub_url)) as (url, proc):
            uvloop.run(blast(f"{url}/v1/track", 200, 8, stub_url, "warm-er"))
            cpu0 = cpu_seconds(proc.pid)
            er_s, er_n = uvloop.run(blast(f"{url}/v1/track", args.events, args.connections, stub_url, "er"))
            er_cpu = cpu_seconds(proc.pid) - cpu0
        ceiling = uvloop.run(stub_ceiling(stub_url))
    diy_rate, er_rate = diy_n / diy_s, er_n / er_s
    print(f"{args.events} events per side, {args.connections} connections, 2 cores ({os.cpu_count()} here)")
    print(f"DIY (Starlette + boto3 invoke per event): {diy_rate:8,.0f} events/s delivered ({diy_n} in {diy_s:.1f} s)")
    print(f"eventrelay end to end:                   {er_rate:8,.0f} events/s delivered ({er_n} in {er_s:.1f} s)")
    print(f"eventrelay CPU: {er_cpu * 1e6 / max(er_n, 1):.0f} us per event (ingest + delivery, all threads)")
    print(f"ceiling: unsigned POSTs straight to the stub, 64 in flight: {ceiling:,.0f}/s")
    ratio = er_rate / diy_rate
    print(f"ratio eventrelay / DIY: {ratio:.2f}x; target >= {TARGET:g}x: {'met' if ratio >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
