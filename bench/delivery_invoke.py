"""Benchmark 3 (issue 8): Invoke throughput to a zero-latency endpoint, eventrelay vs aiobotocore.

    python bench/delivery_invoke.py [--seconds 10] [--concurrency 64]

A minimal fast Invoke endpoint (raw asyncio protocol, uvloop, separate process) answers every
Invoke with 200 at once and STS AssumeRole with session credentials. In this process:

1. ``AwsLambdaDestination.send`` from N coroutines for the given time (the STS step runs once,
   through the real credential code, before the clock starts);
2. a loop of aiobotocore ``lambda.invoke`` calls at the same concurrency (the ceiling a user
   of the official async SDK gets);
3. raw unsigned POSTs at the same concurrency: with aiohttp, and with eventrelay's own HTTP/1.1
   client (``destinations/http_client/``: the transport's own ceiling, so the rest of the
   ratio is signing, credentials and the destination's bookkeeping).

Targets: eventrelay >= 5,000 invocations/s and >= 3x aiobotocore.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson

ROLE_ARN = "arn:aws:iam::123456789012:role/eventrelay-bench"
EVENT = {
    "type": "track",
    "event": "Order Completed",
    "userId": "user-123",
    "messageId": "bench-message-id-0000000001",
    "properties": {"orderId": "o-1", "total": 42.5, "currency": "USD", "products": [{"sku": "s1", "qty": 2}]},
    "context": {"library": {"name": "analytics-python", "version": "2.3.3"}, "ip": "10.0.0.1"},
    "timestamp": "2026-11-26T10:00:00.000Z",
}
BODY = orjson.dumps(EVENT)
SEND_TIMEOUT = 30.0  # seconds: generous, as the SDK and raw clients compared run without one


# -- the stub endpoint (runs in its own process) --------------------------------------------------
def _sts_answer() -> bytes:
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
        "<Credentials><AccessKeyId>BENCH-SESSION-KEY-01</AccessKeyId>"
        "<SecretAccessKey>bench-session-secret</SecretAccessKey><SessionToken>bench-session-token</SessionToken>"
        f"<Expiration>{expires}</Expiration></Credentials>"
        f"<AssumedRoleUser><Arn>{ROLE_ARN}/bench</Arn><AssumedRoleId>AROABENCH:bench</AssumedRoleId>"
        "</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    ).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s" % (len(xml), xml)


INVOKE_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Amz-Executed-Version: $LATEST\r\n"
    b'x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


def request_lines(buf: bytearray) -> Iterator[bytes]:
    """Take each complete HTTP/1.1 request off the front of ``buf``, giving its request line
    (lower-cased); an incomplete one stays in ``buf`` for more data."""
    while (end := buf.find(b"\r\n\r\n")) >= 0:
        head = bytes(buf[:end]).lower()
        total = end + 4 + _content_length(head)
        if len(buf) < total:
            return
        del buf[:total]
        yield head.partition(b"\r\n")[0]


def _content_length(head: bytes) -> int:
    """The Content-Length of a request head (lower-cased, without the blank line); 0 without one."""
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    line_end = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : line_end if line_end > 0 else None])


class StubProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection, answered after ``latency``."""

    latency = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for line in request_lines(self.buf):
            answer = INVOKE_ANSWER if b"/invocations" in line else _sts_answer()
            if self.latency:
                self.loop.call_later(self.latency, self._write, answer)
            else:
                self.transport.write(answer)

    def _write(self, answer: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(answer)


def serve(latency: float) -> None:
    import uvloop

    async def main() -> None:
        StubProtocol.latency = latency
        server = await asyncio.get_running_loop().create_server(StubProtocol, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    uvloop.run(main())


def start_stub(latency: float = 0.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start the stub endpoint in a child process; returns it and its URL."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", str(latency)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


# -- load generation ------------------------------------------------------------------------------
@dataclasses.dataclass
class Rate:
    per_second: float  # successful calls per second
    failures: int
    cpu_us: float  # client CPU (this process) per call: robust when other load shares the cores


async def run_for(seconds: float, concurrency: int, call: Callable[[], Awaitable[bool]]) -> Rate:
    """Run ``call`` from ``concurrency`` coroutines for ``seconds``."""
    done = failed = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, failed
        while time.perf_counter() < stop:
            if await call():
                done += 1
            else:
                failed += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    calls = max(1, done + failed)
    return Rate(done / (time.perf_counter() - started), failed, (time.process_time() - cpu) / calls * 1e6)


def bench_env(url: str) -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="BENCH-BASE-KEY-0001",
        AWS_SECRET_ACCESS_KEY="bench-base-secret",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )


async def eventrelay_rate(url: str, seconds: float, concurrency: int, within: float = SEND_TIMEOUT) -> Rate:
    from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
    from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings
    from eventrelay.destinations.base import SendRequest

    request = SendRequest(BODY, EVENT, "bench", str(EVENT["messageId"]))
    settings = AwsLambdaSettings.model_validate(
        {"lambda": "bench-fn", "region": "us-west-2", "role_address": ROLE_ARN, "endpoint_url": url}
    )
    dest = AwsLambdaDestination("bench", settings, external_id="ws_bench", concurrency=concurrency)
    warm = await dest.send(request, 5.0)  # the STS step, once
    assert warm.ok, warm

    async def call() -> bool:
        return (await dest.send(request, within)).ok

    try:
        return await run_for(seconds, concurrency, call)
    finally:
        await dest.close()


async def aiobotocore_rate(url: str, seconds: float, concurrency: int) -> Rate:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(max_pool_connections=concurrency, retries={"max_attempts": 1})
    async with get_session().create_client(
        "lambda", region_name="us-west-2", endpoint_url=url, config=config
    ) as client:

        async def call() -> bool:
            answer = await client.invoke(FunctionName="bench-fn", Payload=BODY)
            await answer["Payload"].read()
            return bool(answer["StatusCode"] == 200)

        await call()
        return await run_for(seconds, concurrency, call)


async def unsigned_rate(url: str, seconds: float, concurrency: int) -> Rate:
    import aiohttp

    target = f"{url}/2015-03-31/functions/bench-fn/invocations"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def call() -> bool:
            async with session.post(target, data=BODY) as resp:
                await resp.read()
                return resp.status == 200

        return await run_for(seconds, concurrency, call)


async def unsigned_lean_rate(url: str, seconds: float, concurrency: int) -> Rate:
    from eventrelay.destinations.http_client import HttpClient

    client = HttpClient(url, max_connections=concurrency)

    async def call() -> bool:
        return (await client.request("POST", "/2015-03-31/functions/bench-fn/invocations", {}, BODY)).status == 200

    try:
        return await run_for(seconds, concurrency, call)
    finally:
        await client.close()


async def main(seconds: float, concurrency: int) -> None:
    proc, url = start_stub()
    try:
        bench_env(url)
        ours = await eventrelay_rate(url, seconds, concurrency)
        sdk = await aiobotocore_rate(url, seconds, concurrency)
        raw = await unsigned_rate(url, seconds, concurrency)
        lean = await unsigned_lean_rate(url, seconds, concurrency)
    finally:
        proc.terminate()
        proc.wait()
    print(f"delivery_invoke: zero-latency Invoke endpoint, {concurrency} in flight, {seconds:g} s each")
    for label, r in (
        ("eventrelay AwsLambdaDestination.send", ours),
        ("aiobotocore lambda.invoke loop", sdk),
        ("unsigned aiohttp POST", raw),
        ("ceiling: unsigned POST, eventrelay client", lean),
    ):
        print(f"  {label:40s} {r.per_second:9,.0f}/s  CPU {r.cpu_us:6.0f} us/call  failures {r.failures}")
    print(f"  ratio eventrelay / aiobotocore (rate)      {ours.per_second / sdk.per_second:6.2f}x  (>= 3x)")
    print(f"  ratio aiobotocore / eventrelay (CPU/call)  {sdk.cpu_us / ours.cpu_us:6.2f}x")
    print(f"  ratio eventrelay / unsigned aiohttp        {ours.per_second / raw.per_second:6.2f}")
    print(f"  ratio eventrelay / unsigned ceiling        {ours.per_second / lean.per_second:6.2f}")
    print(
        f"  target >= 5,000/s: {'met' if ours.per_second >= 5000 else 'NOT met'}; "
        f">= 3x aiobotocore: {'met' if ours.per_second >= 3 * sdk.per_second else 'NOT met'}"
    )
    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work skews rates)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
    else:
        import uvloop

        uvloop.run(main(args.seconds, args.concurrency))
