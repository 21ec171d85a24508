"""Benchmarks driven by wrk (a C load generator): steady state with delivery on, and workers.

    python bench/wrk_bench.py steady  [--seconds 30] [--workers 1]
    python bench/wrk_bench.py workers [--seconds 10] [--counts 1,2,auto]
    python bench/wrk_bench.py ingest  [--seconds 10] [--counts 1,2]

``steady``: single events at the highest rate wrk reaches for ``--seconds`` with delivery on (the
zero-latency Invoke stub of ``end_to_end.py``): accepted/s, delivered/s in the same seconds, and
the backlog (``eventrelay_queue_depth``) at the end. ``workers``: for each ``--workers`` count,
single events and batches of 100: accepted and delivered events/s. ``ingest``: the same with no
destination (ingest only: a durable 200 per request, nothing delivered). All print the ceiling
measured in the same run: the bare uvicorn + orjson ASGI app of ``ingest_single.py`` (one
process) under the same wrk script and bodies. wrk's Lua script (``bench/wrk/events.lua``) gives
every event a fresh messageId per thread and request. The load average is printed beside each
figure: the load generator, the stub and eventrelay share the machine's cores.

Needs ``wrk`` on the PATH (Debian: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from end_to_end import WRITE_KEY, eventrelay_process, free_port, stub_process, write_config
from ingest_single import track_event

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "wrk" / "events.lua"
WRK_THREADS = 2  # one per core of the development machine
CONNECTIONS = 64
BATCH = 100
SETTLE_SECONDS = 2.0  # after wrk stops, before the backlog is read (in-flight commits land)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def event_file(directory: Path) -> Path:
    event = track_event()
    event["messageId"] = "@ID@"
    path = directory / "event.json"
    path.write_text(json.dumps(event, separators=(",", ":")))
    return path


def wrk(url: str, seconds: float, batch: int, event: Path) -> dict[str, float]:
    """wrk against ``url`` for ``seconds``; its RESULT line (requests, ok, refused, ...)."""
    env = dict(os.environ)
    env.update(
        {
            "EVENTRELAY_AUTH": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
            "EVENTRELAY_EVENT": str(event),
            "EVENTRELAY_BATCH": str(batch),
        }
    )
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(SCRIPT), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    found = re.search(r"^RESULT (.*)$", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out}")
    result: dict[str, float] = json.loads(found.group(1))
    return result


@contextmanager
def bare_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "ingest_single.py"), "--serve", "bare", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_listening(port, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the bare server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the bare server did not listen")


@contextmanager
def eventrelay(workdir: Path, stub_url: str, workers: str, *, deliver: bool = True) -> Iterator[str]:
    """``eventrelay serve --workers N`` on a fresh data directory, delivering to the stub
    (``deliver=False``: no destination)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = write_config(workdir, stub_url, concurrency=64, deliver=deliver)
    with eventrelay_process(config, extra=("--workers", workers), stop_timeout=90) as (url, _):
        time.sleep(2.0 if workers != "1" else 0.5)  # every worker up, not only the first to answer
        yield url


def invokes(stub_url: str) -> int:
    with urllib.request.urlopen(f"{stub_url}/count", timeout=10) as answer:
        return int(json.loads(answer.read())["invokes"])


def backlog(url: str) -> int:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return int(sum(float(v) for v in re.findall(r"^eventrelay_queue_depth\{[^}]*\} (\S+)$", text, re.MULTILINE)))


def measure(url: str, stub_url: str, seconds: float, batch: int, event: Path) -> dict[str, float]:
    """One wrk run against eventrelay: accepted and delivered events/s in the same seconds, and
    the backlog after it."""
    before = invokes(stub_url)
    result = wrk(url, seconds, batch, event)
    delivered = invokes(stub_url) - before
    time.sleep(SETTLE_SECONDS)
    per_request = batch or 1
    return {
        "accepted_per_s": result["ok"] * per_request / result["seconds"],
        "delivered_per_s": delivered / result["seconds"],
        "refused": result["refused"],
        "socket_errors": result["socket_errors"],
        "p99_ms": result["p99_ms"],
        "backlog": backlog(url),
    }


def ceiling(seconds: float, batch: int, event: Path) -> float:
    with bare_server() as url:
        result = wrk(url, seconds, batch, event)
    return result["ok"] * (batch or 1) / result["seconds"]


def steady(args: argparse.Namespace, tmp: Path, event: Path) -> None:
    print(f"# steady state: single events, {args.seconds:g} s, delivery on, --workers {args.workers}")
    bare = ceiling(min(args.seconds, 10.0), 0, event)
    print(f"ceiling (bare ASGI app, 1 process): {bare:,.0f} events/s   [load {load_average()}]")
    with stub_process() as stub_url, eventrelay(tmp / "steady", stub_url, args.workers) as url:
        m = measure(url, stub_url, args.seconds, 0, event)
    print(
        f"eventrelay: accepted {m['accepted_per_s']:,.0f}/s, delivered {m['delivered_per_s']:,.0f}/s"
        f" (ratio {m['delivered_per_s'] / max(m['accepted_per_s'], 1):.2f}), backlog at the end {m['backlog']:,},"
        f" refused {m['refused']:.0f}, p99 {m['p99_ms']:.1f} ms; {m['accepted_per_s'] / bare:.2f} of the ceiling"
        f"   [load {load_average()}]"
    )


def workers(args: argparse.Namespace, tmp: Path, event: Path) -> None:
    deliver = args.bench == "workers"
    mode = "delivery on" if deliver else "ingest only (no destination)"
    print(f"# {args.bench}: {args.seconds:g} s per run, {mode}, single events and batches of {BATCH}")
    bare = {batch: ceiling(args.seconds, batch, event) for batch in (0, BATCH)}
    print(
        f"ceiling (bare ASGI app, 1 process): single {bare[0]:,.0f} events/s, batch {bare[BATCH]:,.0f} events/s"
        f"   [load {load_average()}]"
    )
    accepted: dict[tuple[str, int], float] = {}
    for count in args.counts.split(","):
        for batch in (0, BATCH):
            workdir = tmp / f"w{count}-{batch}"
            with stub_process() as stub_url, eventrelay(workdir, stub_url, count, deliver=deliver) as url:
                m = measure(url, stub_url, args.seconds, batch, event)
            accepted[(count, batch)] = m["accepted_per_s"]
            kind = "single" if batch == 0 else f"batch {batch}"
            print(
                f"--workers {count:>4} {kind:>9}: accepted {m['accepted_per_s']:>9,.0f} events/s"
                f" ({m['accepted_per_s'] / bare[batch]:.2f} of the ceiling), delivered {m['delivered_per_s']:>8,.0f}/s,"
                f" backlog {m['backlog']:>8,}, refused {m['refused']:.0f}   [load {load_average()}]"
            )
    if ("1", BATCH) in accepted and ("2", BATCH) in accepted:
        print(
            f"batches, --workers 2 / --workers 1: {accepted[('2', BATCH)] / accepted[('1', BATCH)]:.2f}x"
            " (issue 18's target >= 1.5x; ingest only: single >= 0.5 and batch >= 0.3 of the ceiling with 1)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", choices=("steady", "workers", "ingest"))
    p.add_argument("--seconds", type=float, default=None, help="seconds per run (steady 30, workers 10)")
    p.add_argument("--workers", default="1", help="steady: serve --workers (default 1)")
    p.add_argument("--counts", default=None, help="workers/ingest: the --workers values (default 1,2,auto / 1,2)")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not on the PATH (Debian: apt-get install -y wrk)")
    args.seconds = args.seconds or (30.0 if args.bench == "steady" else 10.0)
    args.counts = args.counts or ("1,2" if args.bench == "ingest" else "1,2,auto")
    with tempfile.TemporaryDirectory(prefix="eventrelay-wrk-") as name:
        tmp = Path(name)
        event = event_file(tmp)
        (steady if args.bench == "steady" else workers)(args, tmp, event)


if __name__ == "__main__":
    main()
