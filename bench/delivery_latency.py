"""Benchmark 4 (issue 8): 100 ms function latency, 1,000 attempts in flight.

    python bench/delivery_latency.py [--seconds 10] [--concurrency 1000] [--latency 0.1]

The stub endpoint of delivery_invoke.py (separate process) answers each Invoke after the latency.
In this process, at the same concurrency:

1. ``AwsLambdaDestination.send`` (STS step once, before the clock starts);
2. the ceiling: raw aiohttp POSTs signed per request with botocore's ``SigV4Auth`` (what a
   careful hand-written client does).

Target: eventrelay >= 0.6 of the ceiling (Little's law allows concurrency / latency = 10,000/s;
the client CPU is the limit on 2 cores).
"""

from __future__ import annotations

import argparse
import os

from delivery_invoke import BODY, Rate, bench_env, eventrelay_rate, run_for, start_stub


async def signed_aiohttp_rate(url: str, seconds: float, concurrency: int) -> Rate:
    import aiohttp
    import botocore.auth
    import botocore.credentials
    from botocore.awsrequest import AWSRequest

    creds = botocore.credentials.Credentials("BENCH-SESSION-KEY-01", "bench-session-secret", "bench-session-token")
    signer = botocore.auth.SigV4Auth(creds, "lambda", "us-west-2")
    target = f"{url}/2015-03-31/functions/bench-fn/invocations"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("Content-Type",)) as session:

        async def call() -> bool:
            request = AWSRequest(
                method="POST", url=target, data=BODY, headers={"X-Amz-Invocation-Type": "RequestResponse"}
            )
            signer.add_auth(request)
            async with session.post(target, data=BODY, headers=dict(request.headers.items())) as resp:
                await resp.read()
                return resp.status == 200

        return await run_for(seconds, concurrency, call)


async def main(seconds: float, concurrency: int, latency: float) -> None:
    proc, url = start_stub(latency)
    try:
        bench_env(url)
        ours = await eventrelay_rate(url, seconds, concurrency)
        raw = await signed_aiohttp_rate(url, seconds, concurrency)
    finally:
        proc.terminate()
        proc.wait()
    print(f"delivery_latency: {latency * 1000:g} ms function latency, {concurrency} in flight, {seconds:g} s each")
    for label, r in (
        ("eventrelay AwsLambdaDestination.send", ours),
        ("ceiling: aiohttp + botocore SigV4Auth", raw),
    ):
        print(f"  {label:40s} {r.per_second:9,.0f}/s  CPU {r.cpu_us:6.0f} us/call  failures {r.failures}")
    ratio = ours.per_second / raw.per_second
    print(f"  Little's law bound                       {concurrency / latency:9,.0f}/s")
    print(
        f"  ratio eventrelay / signed aiohttp        {ratio:6.2f}  "
        f"(target >= 0.6: {'met' if ratio >= 0.6 else 'NOT met'})"
    )
    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work skews rates)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    import uvloop

    uvloop.run(main(args.seconds, args.concurrency, args.latency))
