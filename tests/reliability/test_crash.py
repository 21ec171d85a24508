"""Crash safety: kill -9 at random moments loses no event that got a 200; SIGTERM is clean.

Runs eventrelay as a subprocess (SQLite queue, local AWS endpoint, a real awslambdaric handler
that records each messageId in a sink file), several concurrent clients, several kill rounds.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter

import pytest

from tests.conftest import soak
from tests.reliability.client import Sender
from tests.reliability.conftest import WRITE_KEY, Server, repeats_once_every_acked_event_arrived, wait_until

ROUNDS = 10 if soak() else 3
IN_FLIGHT_BOUND = 8 + 64  # destination concurrency + one claim batch: what a kill can leave unacked


def _load_and_kill(server: Server, sig: int, rounds: int, rng: random.Random) -> Sender:
    sender = Sender(server.url, WRITE_KEY)
    threads = sender.run_threads(4)
    try:
        for _ in range(rounds):
            time.sleep(rng.uniform(0.5, 2.0))  # kill lands during group commits and deliveries
            server.kill(sig)
            server.start()
        time.sleep(1.0)
    finally:
        sender.stop.set()
        for t in threads:
            t.join(timeout=15)
    return sender


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event(server: Server) -> None:
    server.start()
    sender = _load_and_kill(server, signal.SIGKILL, ROUNDS, random.Random(7))
    duplicates = repeats_once_every_acked_event_arrived(server, set(sender.acked), least=100)
    assert duplicates <= ROUNDS * IN_FLIGHT_BOUND, f"{duplicates} duplicate deliveries"


@pytest.mark.slow
def test_sigterm_is_graceful_without_duplicates(server: Server) -> None:
    server.start()
    sender = _load_and_kill(server, signal.SIGTERM, 2, random.Random(11))
    acked = set(sender.acked)
    assert len(acked) > 50
    assert wait_until(lambda: acked <= set(server.delivered_ids()), timeout=120)
    counts = Counter(server.delivered_ids())
    assert [mid for mid, c in counts.items() if c > 1] == []
