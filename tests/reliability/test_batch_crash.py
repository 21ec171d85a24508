"""Crash safety with batches: kill -9 while batches are in flight loses no event that got a 200,
and repeats at most the batches that were in flight.

eventrelay runs as a subprocess (SQLite queue, the local AWS endpoint) with its ``sink``
destination set to batch; the real awslambdaric handler takes a while per batch and then records
every messageId of the batch in the sink file, so the test tells exactly which accepted events
reached the function. Load and kills as in ``test_crash.py``.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import Server, repeats_once_every_acked_event_arrived, sink_server
from tests.reliability.test_crash import _load_and_kill

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


@pytest.fixture
def batch_server(tmp_path: Path) -> Iterator[Server]:
    with sink_server(
        tmp_path,
        handler=BATCH_SINK,
        batch=f"{{max_events: {MAX_EVENTS}, max_wait: 100ms}}",
        timeout="10s",
        concurrency=CONCURRENCY,
        function_concurrency=CONCURRENCY,
    ) as srv:
        yield srv


@pytest.mark.slow
def test_sigkill_during_batches_loses_nothing_and_repeats_at_most_the_batches_in_flight(
    batch_server: Server,
) -> None:
    batch_server.start()
    sender = _load_and_kill(batch_server, signal.SIGKILL, ROUNDS, random.Random(15))
    duplicates = repeats_once_every_acked_event_arrived(batch_server, set(sender.acked), least=200)
    assert duplicates <= ROUNDS * IN_FLIGHT_BOUND, f"{duplicates} duplicate deliveries"
