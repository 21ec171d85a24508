"""Faults at the function: a handler that raises, one that hangs past the timeout, one that exits
its runtime process, one that returns over 6 MB; each for a while and then recovering: every event
is delivered within the retry window and the deliveries API shows the right category while it was
failing."""

from __future__ import annotations

import pytest

from tests.reliability.api import deliveries
from tests.reliability.client import Sender
from tests.reliability.conftest import WRITE_KEY, Server, wait_until


def _send(server: Server, batches: int) -> set[str]:
    sender = Sender(server.url, WRITE_KEY)
    for _ in range(batches):
        sender.send_batch(5)
    assert sender.refused == 0 and sender.errors == 0
    return set(sender.acked)


def _categories(server: Server, ids: set[str]) -> set[str]:
    return {r["category"] for r in deliveries(server.url, destination="sink") if r["message_id"] in ids}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "category"),
    [("raise", "execution_error"), ("slow", "timeout"), ("exit", "execution_error"), ("big", "execution_error")],
)
def test_failing_function_recovers_and_every_event_is_delivered(server: Server, mode: str, category: str) -> None:
    server.config_path.write_text(server.config_path.read_text().replace("timeout: 5s", "timeout: 1s"))
    server.set_mode(mode)
    server.start()
    ids = _send(server, 4)
    assert wait_until(lambda: category in _categories(server, ids), timeout=60), _categories(server, ids)
    retrying = [r for r in deliveries(server.url, destination="sink") if r["message_id"] in ids]
    assert all(r["status"] in ("retrying", "delivered") for r in retrying)
    assert all(r["status"] != "failed" for r in retrying)
    server.set_mode("ok")
    assert wait_until(lambda: ids <= set(server.delivered_ids()), timeout=90)
    assert wait_until(
        lambda: (
            {r["status"] for r in deliveries(server.url, destination="sink") if r["message_id"] in ids} == {"delivered"}
        ),
        timeout=30,
    )
