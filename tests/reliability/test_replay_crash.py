"""A replay survives kill -9, on SQLite and on JetStream (a real nats-server, which stays up):
eventrelay (a subprocess) is killed in the middle of a replay into a destination created after
the events arrived, restarted, and the replay resumes where its cursor was left (SQLite: its last
commit; JetStream: its last compare-and-set, the step after it deduplicated by the work stream):
every archived event reaches the function, none is enqueued twice by the replay (duplicates at
the function are only the attempts in flight at the kill, as for live traffic). The replay is
started and dry-run with the ``eventrelay replay`` command."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.jetstream.natsserver import single_server
from tests.reliability.client import Sender
from tests.reliability.conftest import ADMIN_TOKEN, WRITE_KEY, Server, wait_until, write_config
from tests.support.process import free_port
from tests.support.serve import EVENTRELAY, serve_env

EVENTS = 3_000
CONCURRENCY = 8  # the destination's; the replay keeps at most half of it in flight
LATE = """
destinations:
  - name: late
    settings: {{lambda: sink, region: us-west-2, role_address: "arn:aws:iam::123456789012:role/eventrelay-invoke",
               endpoint_url: "http://127.0.0.1:{aws_port}"}}
    delivery: {{concurrency: {concurrency}, backoff_base: 200ms, backoff_cap: 1s}}
"""


def replay_cli(server: Server, *args: str) -> dict[str, Any]:
    env = {**server.env, "EVENTRELAY_ADMIN_TOKEN": ADMIN_TOKEN}
    done = subprocess.run(
        [*EVENTRELAY, "replay", "--url", server.url, "late", "--since", "1h", "--json", *args],
        capture_output=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def replay_state(server: Server, replay_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.url}/api/v1/destinations/late/replays/{replay_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        state: dict[str, Any] = json.loads(answer.read())
        return state


@pytest.fixture(params=["sqlite", "jetstream"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """``storage:`` of the deployment; JetStream's server is not the process killed."""
    if request.param == "sqlite":
        yield None
        return
    nats = single_server(tmp_path / "nats")
    try:
        yield f'backend: jetstream, servers: ["{nats.url}"], stream: REPLAYCRASH'
    finally:
        nats.stop()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_kill_9_during_a_replay_then_restart_skips_nothing_and_enqueues_nothing_twice(
    tmp_path: Path, storage: str | None
) -> None:
    port, aws_port = free_port(), free_port()
    config = write_config(tmp_path, port, aws_port, destinations="destinations: []", storage=storage)
    server = Server(tmp_path, config, port, tmp_path / "functions" / "sink.txt", serve_env(log_level="info"))
    try:
        server.start()
        sender = Sender(server.url, WRITE_KEY)
        while len(sender.acked) < EVENTS:
            sender.send_batch(100)
        server.kill(signal.SIGTERM)
        late = LATE.format(aws_port=aws_port, concurrency=CONCURRENCY)
        write_config(tmp_path, port, aws_port, destinations=late, storage=storage)
        server.start()  # the destination exists from now on; the events arrived before it

        plan = replay_cli(server, "--dry-run")
        assert (plan["matched"], plan["events_in_window"]) == (EVENTS, EVENTS)
        assert server.delivered_ids() == []
        replay = replay_cli(server, "--detach")
        assert replay["state"] == "running" and replay["max_in_flight"] == CONCURRENCY // 2

        assert wait_until(lambda: len(server.delivered_ids()) >= EVENTS // 3, timeout=120)
        server.kill(signal.SIGKILL)  # in the middle of the replay
        at_kill = len(server.delivered_ids())
        server.start()
        assert wait_until(lambda: replay_state(server, replay["id"])["state"] == "done", timeout=240)
        final = replay_state(server, replay["id"])
    finally:
        if server.proc is not None:
            server.kill()
    assert at_kill < EVENTS, "the kill came after the replay had ended: it tested nothing"
    delivered = Counter(server.delivered_ids())
    assert set(delivered) == set(sender.acked)  # nothing skipped
    assert (final["enqueued"], final["skipped"]) == (EVENTS, 0)  # each event enqueued once by the replay
    assert final["counts"]["delivered"] == EVENTS
    duplicates = sum(n - 1 for n in delivered.values())
    assert duplicates <= CONCURRENCY // 2, f"{duplicates} events sent twice (at most the ones in flight at the kill)"
