"""Fixtures for crash/fault/security suites: eventrelay as a real subprocess with the local AWS endpoint.

The handler used here appends each event's messageId to a sink file, so a test can tell exactly
which accepted events reached the function, even across kill -9 of eventrelay.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import free_port
from tests.support.serve import serve_env, spawn_eventrelay, wait_healthy

WRITE_KEY = "wk_reliability_0123456789abcdef"
ADMIN_TOKEN = "adm_reliability_0123456789abcdef"
WORKSPACE = "ws_reliability"
START_TIMEOUT = 60.0  # seconds for a started eventrelay to answer /healthz on a loaded 2-core machine

SINK_HANDLER = """
import json, os, time

def handler(event, context):
    mode_file = os.path.join(os.path.dirname(__file__), "mode")
    mode = open(mode_file).read().strip() if os.path.exists(mode_file) else "ok"
    if mode == "raise":
        print("boom from handler")
        raise RuntimeError("handler is failing on purpose")
    if mode == "slow":
        time.sleep(30)
    if mode == "exit":
        print("exiting the runtime process")
        os._exit(3)
    if mode == "big":
        return "x" * (7 * 1024 * 1024)  # over Lambda's 6 MB response limit
    with open(os.path.join(os.path.dirname(__file__), "sink.txt"), "a") as f:
        f.write(event["messageId"] + "\\n")
        f.flush()
        os.fsync(f.fileno())
    print("delivered", event["messageId"])
    return {"ok": True}
"""


@dataclass
class Server:
    """One eventrelay deployment started with a config file (``workers`` > 1: a parent and that
    many worker processes, ``serve --workers``); restartable."""

    workdir: Path
    config_path: Path
    port: int
    sink: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    workers: int = 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.workdir / f"serve-{len(self.logs)}.log"
        self.logs.append(log)
        args = ["serve", "--config", str(self.config_path), "--port", str(self.port)]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        self.proc = spawn_eventrelay(args, cwd=self.workdir, env=self.env, log=log)
        wait_healthy(f"{self.url}/healthz", self.proc, log, START_TIMEOUT)
        assert wait_until(lambda: len(self.worker_pids()) == self.worker_processes, START_TIMEOUT)

    @property
    def worker_processes(self) -> int:
        """Processes that serve the port: the workers, or the one process without ``--workers``."""
        return self.workers if self.workers > 1 else 0

    def worker_pids(self) -> list[int]:
        """The worker processes of the parent (``--workers``), read from /proc."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()] if children.exists() else []
        return [pid for pid in pids if "--worker-socket" in _cmdline(pid)]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.proc = None

    def set_mode(self, mode: str) -> None:
        (self.workdir / "functions" / "mode").write_text(mode)

    def delivered_ids(self) -> list[str]:
        return self.sink.read_text().split() if self.sink.exists() else []

    def all_output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:  # exited meanwhile
        return ""


def write_config(
    workdir: Path,
    port: int,
    aws_port: int,
    *,
    timeout: str = "5s",
    extra_dest: str = "",
    handler: str = SINK_HANDLER,
    batch: str | None = None,
    concurrency: int = 8,
    function_concurrency: int = 2,
    destinations: str | None = None,
    storage: str | None = None,
) -> Path:
    """The config of the ``sink`` destination (and ``extra_dest``) and its local function
    (``handler``'s source), or ``destinations`` (a YAML ``destinations:`` block) instead of both;
    ``batch`` is the sink's batch setting as YAML (None: one event per invoke); ``storage`` the
    keys of ``storage:`` besides its path (None: SQLite)."""
    functions = workdir / "functions"
    functions.mkdir(parents=True, exist_ok=True)
    (functions / "sink.py").write_text(handler)
    batch_line = "" if batch is None else f"\n      batch: {batch}"
    config = workdir / "eventrelay.yaml"
    config.write_text(f"""
workspace: {{id: {WORKSPACE}}}
storage: {{{storage or "backend: sqlite"}, path: {workdir / "data"}}}
admin: {{token: {ADMIN_TOKEN}}}
sources:
  - {{name: app, write_key: {WRITE_KEY}}}
{destinations or _sink_destination(aws_port, timeout, extra_dest, batch_line, concurrency)}
localaws:
  port: {aws_port}
  functions_dir: {functions}
  functions:
    sink: {{handler: sink.handler, timeout: 30s, concurrency: {function_concurrency}}}
  roles:
    eventrelay-invoke: {{}}
""")
    return config


@contextmanager
def sink_server(tmp_path: Path, **config: Any) -> Iterator[Server]:
    """A ``Server`` (not started) of ``write_config(**config)``; killed at the end if running."""
    port, aws_port = free_port(), free_port()
    path = write_config(tmp_path, port, aws_port, **config)
    srv = Server(tmp_path, path, port, tmp_path / "functions" / "sink.txt", serve_env(log_level="info"))
    try:
        yield srv
    finally:
        if srv.proc is not None:
            srv.kill()


def _sink_destination(aws_port: int, timeout: str, extra_dest: str, batch_line: str, concurrency: int) -> str:
    return f"""destinations:
  - name: sink
    settings:
      lambda: sink
      region: us-west-2
      role_address: arn:aws:iam::123456789012:role/eventrelay-invoke
      endpoint_url: http://127.0.0.1:{aws_port}
      log_type: Tail{batch_line}
    delivery: {{timeout: {timeout}, backoff_base: 200ms, backoff_cap: 1s, concurrency: {concurrency}}}
{extra_dest}"""


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A deployment of one process, or of ``request.param`` workers (indirect parametrize)."""
    with sink_server(tmp_path) as srv:
        srv.workers = getattr(request, "param", 1)
        yield srv


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def repeats_once_every_acked_event_arrived(server: Server, acked: set[str], *, least: int) -> int:
    """Fail unless ``acked`` (the events that got a 200, at least ``least`` of them) all reach the
    function within two minutes; then return how many deliveries were repeats."""
    assert len(acked) > least, f"too little load to mean anything ({len(acked)} acked)"
    assert wait_until(lambda: acked <= set(server.delivered_ids()), timeout=120), (
        f"{len(acked - set(server.delivered_ids()))} acknowledged events never reached the function"
    )
    counts = Counter(server.delivered_ids())
    return sum(c - 1 for c in counts.values() if c > 1)
