"""Flow control (issue 16): adaptive concurrency against a throttling endpoint, and per-user ordering.

    python bench/flow_control.py [--events 4000] [--allowed 8] [--latency 0.02] [--users 1000]

A stub Lambda endpoint (raw asyncio protocol, separate process) takes ``--allowed`` invocations
at once, each answered after ``--latency`` seconds, and answers any invocation beyond those at
once with 429 ``TooManyRequestsException`` (Reason ``ReservedFunctionConcurrentInvocationLimitExceeded``,
no Retry-After, as Lambda's concurrency throttles); it answers STS AssumeRole and refuses
GetFunctionConcurrency (404), so the limit must be found by throttles. In this process, the
delivery engine (SQLite queue and delivery log, the aws_lambda destination) delivers ``--events``
events appended up front:

1. fixed concurrency 64: the same engine with the multiplicative cut switched off (what a
   fixed-concurrency sender does), then adaptive (AIMD, the default). Printed: delivered/s and
   throttled answers per delivered event; the ceiling is the endpoint's capacity, allowed / latency.
2. ordering off vs on (``ordering: user``) with ``--users`` users, against an endpoint that does
   not throttle: delivered/s; the ceiling is ordering off.
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
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from delivery_invoke import ROLE_ARN, _sts_answer, bench_env, request_lines

APPEND_BATCH = 500  # events per queue append
DEADLINE = 600.0  # seconds for one run to deliver everything


# -- the stub endpoint (its own process) ------------------------------------------------------------
def _answer(status: str, headers: str, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n%s" % (status.encode(), headers.encode(), len(body), body)


OK = _answer("200 OK", "Content-Type: application/json\r\nX-Amz-Executed-Version: $LATEST\r\n", b'{"ok":true}')
THROTTLED = _answer(
    "429 Too Many Requests",
    "Content-Type: application/json\r\nx-amzn-ErrorType: TooManyRequestsException\r\n",
    b'{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}',
)
NOT_FOUND = _answer(
    "404 Not Found", "x-amzn-ErrorType: ResourceNotFoundException\r\n", b'{"message":"no concurrency here"}'
)


class Stub(asyncio.Protocol):
    allowed = 8
    latency = 0.02
    running = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for line in request_lines(self.buf):
            if b"/invocations" in line:
                self._invoke()
            elif b"/concurrency" in line:
                self.transport.write(NOT_FOUND)
            else:
                self.transport.write(_sts_answer())

    def _invoke(self) -> None:
        if Stub.running >= Stub.allowed:
            self.transport.write(THROTTLED)
            return
        Stub.running += 1
        self.loop.call_later(Stub.latency, self._done)

    def _done(self) -> None:
        Stub.running -= 1
        if not self.transport.is_closing():
            self.transport.write(OK)


def serve(allowed: int, latency: float) -> None:
    import uvloop

    async def main() -> None:
        Stub.allowed, Stub.latency = allowed, latency
        server = await asyncio.get_running_loop().create_server(Stub, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    uvloop.run(main())


def start_stub(allowed: int, latency: float) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", str(allowed), str(latency)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{int(proc.stdout.readline())}"


# -- one run of the engine --------------------------------------------------------------------------
@dataclass
class Run:
    delivered: int
    throttled: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds


def _events(count: int, users: int) -> list[tuple[str, bytes, str]]:
    out = []
    for n in range(count):
        mid = f"bench-{uuid.uuid4()}"
        user = f"user-{n % users}"
        event = {"type": "track", "event": "Step", "userId": user, "messageId": mid, "properties": {"n": n}}
        out.append((mid, orjson.dumps(event), f"u:{user}"))
    return out


async def run(url: str, events: int, *, users: int = 1000, ordered: bool = False, fixed: bool = False) -> Run:
    from eventrelay.config.model import DeliveryPolicy
    from eventrelay.core import telemetry
    from eventrelay.core.records import Accepted
    from eventrelay.delivery import aimd
    from eventrelay.delivery.engine import DeliveryEngine
    from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
    from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
    from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings
    from eventrelay.queue.sqlite import SQLiteQueue

    name = f"bench-{uuid.uuid4().hex[:8]}"
    cut = aimd.CUT
    aimd.CUT = 1.0 if fixed else cut  # fixed concurrency: a throttle never lowers the limit
    with tempfile.TemporaryDirectory() as tmp:
        queue = SQLiteQueue(Path(tmp) / "queue.db", max_events=events * 2)
        log = SQLiteDeliveryLog(Path(tmp) / "deliverylog.db")
        await queue.start()
        await log.start()
        if ordered:
            await queue.order_lanes([name])
        items = [Accepted(m, "bench", "track", time.time(), b, (name,), lane) for m, b, lane in _events(events, users)]
        for start in range(0, len(items), APPEND_BATCH):
            await queue.append(items[start : start + APPEND_BATCH])
        settings = AwsLambdaSettings.model_validate(
            {"lambda": "bench-fn", "region": "us-west-2", "role_address": ROLE_ARN, "endpoint_url": url}
        )
        destination = AwsLambdaDestination(name, settings, external_id="ws_bench", concurrency=64)
        engine = DeliveryEngine(queue, log, {name: (destination, DeliveryPolicy(concurrency=64))})
        started = time.perf_counter()
        await engine.start()
        try:
            deadline = time.monotonic() + DEADLINE
            while await queue.depth(name) > 0 and time.monotonic() < deadline:  # noqa: ASYNC110 - the queue has no event
                await asyncio.sleep(0.02)
            seconds = time.perf_counter() - started
        finally:
            await engine.stop()
            await destination.close()
            await queue.close()
            await log.close()
            aimd.CUT = cut
    throttled = telemetry.ATTEMPTS.labels(name, "throttled")._value.get()
    delivered = telemetry.DELIVERED.labels(name)._value.get()
    return Run(int(delivered), int(throttled), seconds)


async def main(events: int, allowed: int, latency: float, users: int) -> None:
    capacity = allowed / latency
    proc, url = start_stub(allowed, latency)
    bench_env(url)
    try:
        fixed = await run(url, events, fixed=True)
        adaptive = await run(url, events)
    finally:
        proc.terminate()
        proc.wait()
    print(
        f"flow_control: {events} events, endpoint takes {allowed} at once x {latency * 1000:g} ms = {capacity:,.0f}/s"
    )
    for label, r in (("fixed concurrency 64", fixed), ("adaptive (AIMD)", adaptive)):
        print(
            f"  {label:22s} {r.rate:8,.0f} delivered/s ({r.rate / capacity:4.2f} of capacity)"
            f"  throttled per delivered {r.throttled / max(1, r.delivered):6.2f}  ({r.delivered} in {r.seconds:.1f} s)"
        )
    proc, url = start_stub(10_000, latency)  # a function that never throttles
    try:
        off = await run(url, events, users=users)
        on = await run(url, events, users=users, ordered=True)
    finally:
        proc.terminate()
        proc.wait()
    print(f"  ordering, {users} users, {latency * 1000:g} ms per invoke, concurrency 64:")
    print(f"  {'ordering off (ceiling)':22s} {off.rate:8,.0f} delivered/s  ({off.delivered} in {off.seconds:.1f} s)")
    print(f"  {'ordering: user':22s} {on.rate:8,.0f} delivered/s  ({on.delivered} in {on.seconds:.1f} s)")
    print(f"  ratio on / off {on.rate / off.rate:5.2f}")
    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work skews rates)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--allowed", type=int, default=8, help="invocations the endpoint takes at once")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per invocation")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--serve", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(int(args.serve[0]), float(args.serve[1]))
    else:
        import uvloop

        uvloop.run(main(args.events, args.allowed, args.latency, args.users))
