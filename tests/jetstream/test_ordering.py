"""Per-user ordering on JetStream with two delivery processes (``serve --role deliver``) sharing the
destination's consumer, one of them killed -9 in the middle and started again: every user's
events first reach the handler in receipt order (a repeat is allowed, an inversion is not), while
the handler fails at random for some users."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow.conftest import (
    ORDER_HANDLER,
    arrivals,
    first_arrivals,
    ordered_destination_yaml,
    record_function_yaml,
    user_events,
)
from tests.support.process import free_port
from tests.support.send import post_batches
from tests.support.serve import serve_env, spawn_eventrelay, wait_healthy

from .natsserver import NatsServer
from .test_serve_roles import Proc as ServeProc

WRITE_KEY = "wk_jsorder_0123456789abcdef"
USERS, PER_USER = 20, 15
DEADLINE = 120.0


def _config(workdir: Path, nats_url: str, aws_port: int, *, data: str, with_localaws: bool = False) -> Path:
    path = workdir / f"{data}.yaml"
    delivery = "{timeout: 10s, backoff_base: 100ms, backoff_cap: 300ms, concurrency: 8}"
    path.write_text(
        f"""
workspace: {{id: ws_jsorder}}
storage: {{backend: jetstream, servers: ["{nats_url}"], stream: ORD, path: {workdir / data}}}
admin: {{token: adm_jsorder_0123456789abcdef}}
"""
        + ordered_destination_yaml(WRITE_KEY, aws_port, delivery)
        + (record_function_yaml(aws_port, workdir / "functions") if with_localaws else "")
    )
    return path


class Proc(ServeProc):
    """A ``test_serve_roles`` process that can be started again with the same arguments."""

    def __init__(self, args: list[str], workdir: Path, name: str, env: dict[str, str]) -> None:
        super().__init__(args, workdir, name, env)
        self.args, self.workdir, self.name, self.env = args, workdir, name, env

    def restart(self) -> None:
        self.log = self.workdir / f"{self.name}-again.log"
        self.proc = spawn_eventrelay(self.args, cwd=self.workdir, env=self.env, log=self.log)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_two_delivery_processes_keep_every_users_order_through_a_kill_9(
    tmp_path: Path, nats_url: str, nats_server: NatsServer, procs: list[Proc]
) -> None:
    env = {**serve_env(log_level="warning"), "FLOW_FAILING_USERS": "user0,user1,user2"}
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "ordering.py").write_text(ORDER_HANDLER)
    aws_port = free_port()
    local_cfg = _config(tmp_path, nats_url, aws_port, data="local", with_localaws=True)
    procs.append(Proc(["localaws", "--config", str(local_cfg)], tmp_path, "localaws", env))
    ports = {"ingest": free_port(), "deliver-a": free_port(), "deliver-b": free_port()}
    for name, port in ports.items():
        cfg = _config(tmp_path, nats_url, aws_port, data=name)
        role = "ingest" if name == "ingest" else "deliver"
        procs.append(Proc(["serve", "--config", str(cfg), "--role", role, "--port", str(port)], tmp_path, name, env))
    for proc, port in zip(procs[1:], ports.values(), strict=True):
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc.proc, proc.log, DEADLINE)

    post_batches(f"http://127.0.0.1:{ports['ingest']}", WRITE_KEY, user_events(USERS, PER_USER))
    total = USERS * PER_USER

    def distinct() -> int:
        return len({a["id"] for a in arrivals(tmp_path)})

    deadline = time.monotonic() + DEADLINE
    while distinct() < total // 3:
        assert time.monotonic() < deadline, f"only {distinct()} delivered"
        await asyncio.sleep(0.1)
    victim = procs[2]  # deliver-a
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=30)
    victim.restart()
    wait_healthy(f"http://127.0.0.1:{ports['deliver-a']}/healthz", victim.proc, victim.log, DEADLINE)
    while distinct() < total:
        assert time.monotonic() < deadline + DEADLINE, f"only {distinct()} of {total} delivered"
        await asyncio.sleep(0.2)

    order = first_arrivals(arrivals(tmp_path))
    assert len(order) == USERS
    for user, numbers in order.items():
        assert numbers == list(range(PER_USER)), f"{user} received {numbers}"
