"""Per-user ordering survives kill -9: eventrelay as a subprocess (SQLite queue, the local Lambda
runtime inside it), killed while delivering, restarted on the same data. Every user's events still
first reach the handler in receipt order; a repeat of an event in flight at the kill is allowed,
an inversion is not."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import Server, wait_until
from tests.support.process import free_port
from tests.support.send import post_batches
from tests.support.serve import serve_env

from .conftest import (
    ORDER_HANDLER,
    arrivals,
    first_arrivals,
    ordered_destination_yaml,
    record_function_yaml,
    user_events,
)

WRITE_KEY = "wk_flow_crash_0123456789abcdef"
USERS, PER_USER = 20, 30
KILLS = 2
FAILING = "user0,user1"


def write_config(workdir: Path, port: int, aws_port: int) -> Path:
    functions = workdir / "functions"
    functions.mkdir(parents=True, exist_ok=True)
    (functions / "ordering.py").write_text(ORDER_HANDLER)
    config = workdir / "eventrelay.yaml"
    config.write_text(
        f"""
workspace: {{id: ws_flow_crash}}
storage: {{backend: sqlite, path: {workdir / "data"}}}
admin: {{token: adm_flow_crash_0123456789abcdef}}
"""
        + ordered_destination_yaml(WRITE_KEY, aws_port, "{backoff_base: 50ms, backoff_cap: 200ms, concurrency: 16}")
        + record_function_yaml(aws_port, functions)
    )

    return config


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port, aws_port = free_port(), free_port()
    env = {**serve_env(log_level="warning"), "FLOW_FAILING_USERS": FAILING}
    srv = Server(tmp_path, write_config(tmp_path, port, aws_port), port, tmp_path / "unused", env)
    yield srv
    if srv.proc is not None:
        srv.kill()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_while_delivering_keeps_every_users_order(server: Server, tmp_path: Path) -> None:
    rng = random.Random(16)
    server.start()
    post_batches(server.url, WRITE_KEY, user_events(USERS, PER_USER))
    total = USERS * PER_USER
    for kill in range(KILLS):
        at_least = total * (kill + 1) // (KILLS + 2)
        assert wait_until(lambda: len({a["id"] for a in arrivals(tmp_path)}) >= at_least, timeout=120)  # noqa: B023
        time.sleep(rng.uniform(0.0, 0.2))  # land anywhere: mid-attempt, mid-settle, mid-claim
        server.kill(signal.SIGKILL)
        server.start()
    assert wait_until(lambda: len({a["id"] for a in arrivals(tmp_path)}) == total, timeout=180)

    order = first_arrivals(arrivals(tmp_path))
    assert len(order) == USERS
    for user, numbers in order.items():
        assert numbers == list(range(PER_USER)), f"{user} received {numbers}"
