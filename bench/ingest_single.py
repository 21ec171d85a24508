"""Benchmark: single-event ingest (issue 8 item 1). Target: eventrelay >= 0.6 x the ceiling.

Runs, on the same server settings (uvicorn, uvloop + httptools, one worker, no access log, and
the GIL switch interval ``eventrelay serve`` sets for its SQLite writer thread):

  (a) the ceiling: a bare ASGI app that reads the body, parses it with orjson and answers 200;
  (b) eventrelay: what ``eventrelay serve`` runs (``Runtime.server_config()``: the one-port app
      and the fast ingest protocol; role ingest) on the SQLite queue in
      a temporary directory (WAL, synchronous=FULL, group commit), one destination configured;

and drives each with a load generator in a SEPARATE process (a lean asyncio HTTP/1.1 keep-alive
client, 64 connections) for ``--seconds`` after a warm-up. Server and generator are pinned to
different cores when the machine has two. Prints req/s of both and the ratio.

    python bench/ingest_single.py [--seconds 10] [--connections 64] [--rounds 1] [--profile]

``--profile`` runs each server under cProfile (CPU time) and prints its top functions.
``--breakdown`` adds eventrelay on the in-memory queue (what durability costs); the hidden
``--kinds bare,nohost`` runs the ingest app alone with a host that stores nothing (diagnosis).
Figures on a shared machine are noisy: the script prints the load average and each server's CPU
per request (all its threads), whose ratio holds up better under contention than req/s.
``bench/ingest_batch.py`` reuses this harness with batches of 100 events.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WRITE_KEY = "wk_bench_0123456789abcdef"
HERE = Path(__file__).resolve()


# -- the payload ----------------------------------------------------------------------------------


def track_event(i: int = 0) -> dict[str, Any]:
    """A ~1.2 KB track event shaped like analytics.js output (no messageId: one is generated)."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{i % 1000:04d}",
        "anonymousId": "a3c5d7e9-1b2f-4a6c-8d0e-2f4a6c8e0b1d",
        "properties": {
            "orderId": f"order-{i:08d}",
            "total": 129.95,
            "revenue": 119.95,
            "shipping": 10.0,
            "tax": 9.6,
            "currency": "USD",
            "coupon": "SPRING24",
            "products": [
                {"productId": "p-100", "sku": "SKU-100", "name": "Trail Shoe", "price": 89.95, "quantity": 1},
                {"productId": "p-200", "sku": "SKU-200", "name": "Wool Socks", "price": 15.0, "quantity": 2},
            ],
        },
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "page": {
                "path": "/checkout/complete",
                "referrer": "https://shop.example/cart",
                "title": "Thank you",
                "url": "https://shop.example/checkout/complete?step=3",
            },
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            "locale": "en-US",
            "timezone": "Europe/Berlin",
            "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
        },
        "integrations": {"All": True},
        "timestamp": "2024-05-01T12:00:00.000Z",
        "sentAt": "2024-05-01T12:00:00.250Z",
    }


def request_bytes(path: str, body: bytes) -> bytes:
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Basic {auth}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# -- servers (run in a child process) ----------------------------------------------------------------


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ceiling: read the body, parse it with orjson, answer 200."""
    import orjson

    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    orjson.loads(b"".join(chunks))
    body = b'{"success":true}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"16")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve(kind: str, port: int, data_dir: str, profile: bool) -> None:
    import uvloop

    from eventrelay.cli.serve import GIL_SWITCH_INTERVAL

    # The same GIL switch interval ``eventrelay serve`` sets (for every kind: the same server
    # settings; the single-threaded bare app is unaffected by it).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    uvloop.install()
    asyncio.run(_serve(kind, port, data_dir, profile))


async def _serve(kind: str, port: int, data_dir: str, profile: bool) -> None:
    import uvicorn

    runtime = None
    app: Any = bare_app
    if kind == "nohost":  # diagnosis: the ingest app alone, with a host that stores nothing
        app = _nohost_app()
    elif kind in ("eventrelay", "memory"):
        from eventrelay.config.model import Config
        from eventrelay.runtime import Runtime

        config = Config.model_validate(
            {
                "storage": {"backend": "sqlite", "path": data_dir},
                "sources": [{"name": "bench", "write_key": WRITE_KEY}],
                "destinations": [
                    {
                        "name": "fn",
                        "settings": {
                            "lambda": "fn",
                            "region": "us-west-2",
                            "role_address": "arn:aws:iam::123456789012:role/r",
                        },
                    }
                ],
            }
        )
        runtime = Runtime(config, role="ingest")
        if kind == "memory":  # the breakdown: ingest alone, with the in-memory queue (not durable)
            from eventrelay.queue.memory import MemoryQueue

            runtime.queue = MemoryQueue(max_events=10**9)
        await runtime.start()
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "lifespan": "off",
        "access_log": False,
        "log_level": "warning",
        "loop": "none",
        "server_header": False,
        "date_header": False,
    }
    if runtime is not None:  # exactly what ``eventrelay serve`` runs (its fast ingest protocol included)
        server = uvicorn.Server(runtime.server_config(**settings))
    else:
        server = uvicorn.Server(uvicorn.Config(app, http="httptools", **settings))
    signal.signal(signal.SIGTERM, lambda *_: None)  # uvicorn re-raises it after a clean shutdown
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU time: waiting for a core is not cost
        profiler.enable()
    try:
        await server.serve()
    finally:
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)
        if runtime is not None:
            q = runtime.queue
            commits = getattr(q, "commits", None)
            await runtime.stop()
            if commits:
                print(f"  [sqlite commits during the run: {commits}]", file=sys.stderr, flush=True)


def _nohost_app() -> Any:
    from eventrelay.ingest.app import IngestApp

    class NoQueue:
        async def append(self, items: Any) -> list[bool]:
            return [True] * len(items)

    class NoHost:
        queue: Any = NoQueue()

        def source_for_key(self, key: str) -> str | None:
            return "bench" if key == WRITE_KEY else None

        def route(self, source: str, event: Any) -> tuple[str, ...]:
            return ("fn",)

    return IngestApp(NoHost())


# -- load generator (run in a child process) ---------------------------------------------------------


class _Conn(asyncio.Protocol):
    """One keep-alive connection sending the same request again as soon as the answer is in."""

    def __init__(self, request: bytes, stats: dict[str, int]) -> None:
        self.request = request
        self.stats = stats
        self.buf = b""
        self.transport: Any = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:  # uvloop's transports are not asyncio.Transport
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            start = head.find(b"content-length:") + 15
            stop = head.find(b"\r\n", start)
            length = int(head[start : stop if stop > 0 else None])
            if len(self.buf) < end + 4 + length:
                return
            status = head[9:12]
            self.stats["ok" if status == b"200" else "bad"] += 1
            self.buf = self.buf[end + 4 + length :]
            if self.stats["stop"]:
                self.transport.close()
                return
            self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def load(port: int, request_file: str, seconds: float, warmup: float, connections: int) -> None:
    import uvloop

    uvloop.install()
    request = Path(request_file).read_bytes()
    print(json.dumps(asyncio.run(_load(port, request, seconds, warmup, connections))), flush=True)


async def _load(port: int, request: bytes, seconds: float, warmup: float, connections: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = {"ok": 0, "bad": 0, "stop": 0}
    conns = [
        (await loop.create_connection(lambda: _Conn(request, stats), "127.0.0.1", port))[1] for _ in range(connections)
    ]
    await asyncio.sleep(warmup)
    ok0, bad0, t0 = stats["ok"], stats["bad"], time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    ok, bad, elapsed = stats["ok"] - ok0, stats["bad"] - bad0, time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    stats["stop"] = 1
    await asyncio.wait([c.closed for c in conns], timeout=10)
    return {"ok": ok, "bad": bad, "seconds": elapsed, "rps": ok / elapsed, "client_cpu": cpu / elapsed}


# -- orchestration ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


PIN = False  # set by --pin: server on core 0, load generator on core 1


def _pin(cpu: int) -> list[str]:
    if PIN and (os.cpu_count() or 1) >= 2 and _has("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its threads (Linux /proc), 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _has(program: str) -> bool:
    from shutil import which

    return which(program) is not None


def measure(kind: str, path: str, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """Run one server kind, drive it, stop it; returns the load generator's figures."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="eventrelay-bench-") as tmp:
        request_file = Path(tmp) / "request.bin"
        request_file.write_bytes(request_bytes(path, body))
        cmd = [
            *_pin(0),
            sys.executable,
            str(HERE),
            "--serve",
            kind,
            "--port",
            str(port),
            "--data",
            f"{tmp}/data",
        ]
        if args.profile:
            cmd.append("--profile")
        server = subprocess.Popen(cmd)
        try:
            _wait_port(port, server)
            cpu0, wall0 = _cpu_seconds(server.pid), time.monotonic()
            out = subprocess.run(
                [
                    *_pin(1),
                    sys.executable,
                    str(HERE),
                    "--load",
                    str(port),
                    "--request",
                    str(request_file),
                    "--seconds",
                    str(args.seconds),
                    "--warmup",
                    str(args.warmup),
                    "--connections",
                    str(args.connections),
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=args.seconds + args.warmup + 60,
            )
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            result["server_cpu"] = (_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - wall0)
        finally:
            server.terminate()
            server.wait(30)
    return result


def compare(path: str, body: bytes, events_per_request: int, args: argparse.Namespace, target: float) -> float:
    """Measure ceiling and eventrelay ``args.rounds`` times (interleaved); print and return the ratio."""
    print(
        f"payload: {len(body)} bytes per request, {events_per_request} event(s); "
        f"{args.connections} connections, {args.seconds:g}s per run, {args.rounds} round(s)",
        flush=True,
    )
    best: dict[str, dict[str, Any]] = {}
    kinds = ("bare", "eventrelay", "memory") if args.breakdown else ("bare", "eventrelay")
    if args.kinds:
        kinds = tuple(args.kinds.split(","))
    for r in range(args.rounds):
        for kind in kinds:
            res = measure(kind, "/" if kind == "bare" else path, body, args)
            print(
                f"  round {r + 1} {kind:<10} {res['rps']:>9.0f} req/s "
                f"{res['rps'] * events_per_request:>10.0f} events/s  (non-200: {res['bad']}, "
                f"CPU: server {res['server_cpu']:.0%}, "
                f"load generator {res['client_cpu']:.0%})",
                flush=True,
            )
            if kind not in best or res["rps"] > best[kind]["rps"]:
                best[kind] = res
    bare, ours = float(best["bare"]["rps"]), float(best["eventrelay"]["rps"])
    ratio = ours / bare
    print(f"ceiling (bare uvicorn + orjson): {bare:.0f} req/s = {bare * events_per_request:.0f} events/s")
    print(f"eventrelay ingest (SQLite, durable 200): {ours:.0f} req/s = {ours * events_per_request:.0f} events/s")
    print(f"ratio: {ratio:.2f} (target >= {target}); load average after: {_loadavg()}")
    cpu_bare = best["bare"]["server_cpu"] / bare * 1e6
    cpu_ours = best["eventrelay"]["server_cpu"] / ours * 1e6
    print(
        f"server CPU per request (all threads): bare {cpu_bare:.0f} us, eventrelay {cpu_ours:.0f} us "
        f"(CPU ratio {cpu_bare / cpu_ours:.2f}; what the req/s ratio would be if both were CPU-bound)"
    )
    if "memory" in best:
        mem = best["memory"]["rps"]
        cpu_mem = best["memory"]["server_cpu"] / mem * 1e6
        print(
            f"breakdown: eventrelay on the in-memory queue {mem:.0f} req/s (ratio {mem / bare:.2f}), "
            f"server CPU {cpu_mem:.0f} us per request; the SQLite queue adds {cpu_ours - cpu_mem:.0f} us"
        )
    if best["eventrelay"]["bad"]:
        print(f"WARNING: eventrelay answered {best['eventrelay']['bad']} non-200 responses", flush=True)
    return ratio


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per run (default 2)")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    p.add_argument("--rounds", type=int, default=1, help="rounds; the best of each side counts (default 1)")
    p.add_argument("--profile", action="store_true", help="cProfile the eventrelay server (slower)")
    p.add_argument("--pin", action="store_true", help="pin the server to core 0, the load generator to core 1")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also run eventrelay on the in-memory queue (ingest cost without durability)",
    )
    p.add_argument("--serve", choices=("bare", "eventrelay", "memory", "nohost"), help=argparse.SUPPRESS)
    p.add_argument("--kinds", default=None, help=argparse.SUPPRESS)  # diagnosis: e.g. bare,nohost
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--load", type=int, help=argparse.SUPPRESS)
    p.add_argument("--request", help=argparse.SUPPRESS)
    return p


def child(args: argparse.Namespace) -> bool:
    """Run as a server or load generator child when asked; True when this process was one."""
    global PIN
    PIN = args.pin
    if args.serve:
        serve(args.serve, args.port, args.data, args.profile)
        return True
    if args.load:
        load(args.load, args.request, args.seconds, args.warmup, args.connections)
        return True
    return False


def main() -> None:
    args = parser("single-event ingest: eventrelay vs a bare uvicorn ASGI app").parse_args()
    if child(args):
        return
    import orjson

    compare("/v1/track", orjson.dumps(track_event()), 1, args, target=0.6)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main()
