"""Crash safety with batches: kill -9 while batches are in flight loses no event that got a 200,
and repeats at most the batches that were in flight.

eventrelay runs as a subprocess (SQLite queue, the local AWS endpoint) with a destination set to
batch; its real awslambdaric handler takes a while per batch and then records every messageId of
the batch in a sink file, so the test tells exactly which accepted events reached the function.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.client import Sender
from tests.reliability.conftest import ADMIN_TOKEN, WORKSPACE, WRITE_KEY, Server, wait_until
from tests.support.process import free_port
from tests.support.serve import serve_env

ROUNDS = 3
CONCURRENCY = 4  # batch invokes in flight
MAX_EVENTS = 50
# Events a kill can leave sent and not acknowledged: the batches in flight, and as many answered
# whose records and acks are still in the settler's pipeline (a commit or two behind).
IN_FLIGHT_BOUND = 2 * CONCURRENCY * MAX_EVENTS
BATCH_SINK = """
import os, time

def handler(event, context):
    ids = [e["messageId"] for e in event["batch"]]
    time.sleep(0.2)  # a kill lands while batches are in flight
    with open(os.path.join(os.path.dirname(__file__), "sink.txt"), "a") as f:
        f.write("".join(i + "\\n" for i in ids))
        f.flush()
        os.fsync(f.fileno())
    return {"batchItemFailures": []}
"""


def write_batch_config(workdir: Path, port: int, aws_port: int) -> Path:
    functions = workdir / "functions"
    functions.mkdir(parents=True, exist_ok=True)
    (functions / "sink.py").write_text(BATCH_SINK)
    config = workdir / "eventrelay.yaml"
    config.write_text(f"""
workspace: {{id: {WORKSPACE}}}
storage: {{backend: sqlite, path: {workdir / "data"}}}
admin: {{token: {ADMIN_TOKEN}}}
sources:
  - {{name: app, write_key: {WRITE_KEY}}}
destinations:
  - name: batched
    settings:
      lambda: sink
      region: us-west-2
      role_address: arn:aws:iam::123456789012:role/eventrelay-invoke
      endpoint_url: http://127.0.0.1:{aws_port}
      batch: {{max_events: {MAX_EVENTS}, max_wait: 100ms}}
    delivery: {{timeout: 10s, backoff_base: 200ms, backoff_cap: 1s, concurrency: {CONCURRENCY}}}
localaws:
  port: {aws_port}
  functions_dir: {functions}
  functions:
    sink: {{handler: sink.handler, timeout: 30s, concurrency: {CONCURRENCY}}}
  roles:
    eventrelay-invoke: {{}}
""")
    return config


@pytest.fixture
def batch_server(tmp_path: Path) -> Iterator[Server]:
    port, aws_port = free_port(), free_port()
    config = write_batch_config(tmp_path, port, aws_port)
    srv = Server(tmp_path, config, port, tmp_path / "functions" / "sink.txt", serve_env(log_level="info"))
    yield srv
    if srv.proc is not None:
        srv.kill()


@pytest.mark.slow
def test_sigkill_during_batches_loses_nothing_and_repeats_at_most_the_batches_in_flight(
    batch_server: Server,
) -> None:
    server, rng = batch_server, random.Random(15)
    server.start()
    sender = Sender(server.url, WRITE_KEY)
    threads = sender.run_threads(3, batch=20)
    try:
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(1.0, 2.5))
            server.kill(signal.SIGKILL)
            server.start()
        time.sleep(1.0)
    finally:
        sender.stop.set()
        for t in threads:
            t.join(timeout=15)

    acked = set(sender.acked)
    assert len(acked) > 200, f"too little load to mean anything ({len(acked)} acked)"
    assert wait_until(lambda: acked <= set(server.delivered_ids()), timeout=120), (
        f"{len(acked - set(server.delivered_ids()))} acknowledged events never reached the function"
    )
    counts = Counter(server.delivered_ids())
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    assert duplicates <= ROUNDS * IN_FLIGHT_BOUND, f"{duplicates} duplicate deliveries"
