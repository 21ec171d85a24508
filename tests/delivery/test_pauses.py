"""The destination-wide pause is the deployment's: with ``serve --workers`` the process that meets
AccessDenied pauses the destination for the others too (``delivery/pauses.FilePauses``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.delivery import worker as worker_module
from eventrelay.delivery.engine import DeliveryEngine
from eventrelay.delivery.pauses import PAUSE_READ_INTERVAL, FilePauses
from eventrelay.deliverylog.memory import MemoryDeliveryLog
from eventrelay.queue.memory import MemoryQueue

from .conftest import FakeDestination, append, delivered, eventually, failing, policy

PAUSE = 1.0


async def test_access_denied_in_one_process_pauses_the_destination_in_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "PAUSE_MIN", PAUSE)
    denied = True

    def respond(event: Mapping[str, Any], n: int) -> Outcome:
        if denied:
            return failing(Category.ACCESS_DENIED, Verdict.BACKOFF_DESTINATION, error_type="AccessDenied")
        return delivered()

    queue, log = MemoryQueue(), MemoryDeliveryLog()
    first, second = FakeDestination("d", respond=respond), FakeDestination("d", respond=respond)
    engines = [
        DeliveryEngine(queue, log, {"d": (dest, policy(concurrency=1))}, pauses=FilePauses(tmp_path / "pauses"))  # type: ignore[dict-item]
        for dest in (first, second)
    ]
    for engine in engines:
        await engine.start()
    try:
        await append(queue, ("d",), "m0")
        await eventually(lambda: len(first.sent) + len(second.sent) == 1)
        await asyncio.sleep(PAUSE_READ_INTERVAL + 0.05)  # the other process has read the pause file
        await append(queue, ("d",), *[f"m{i}" for i in range(1, 6)])
        for engine in engines:
            engine.notify(["d"])
        await asyncio.sleep(PAUSE / 2)
        assert len(first.sent) + len(second.sent) == 1  # neither process sent while the destination was paused
        assert all(engine.status()["d"]["paused"] for engine in engines)
        denied = False
        everything = [f"m{i}" for i in range(6)]
        await eventually(lambda: sorted(m for (m, _), r in log.rows.items() if r.status == "delivered") == everything)
    finally:
        for engine in engines:
            await engine.stop()


def test_a_pause_file_is_read_by_a_fresh_board(tmp_path: Path) -> None:
    FilePauses(tmp_path).publish("d", 1234.5)
    assert FilePauses(tmp_path).until("d") == 1234.5
    assert FilePauses(tmp_path).until("other") == 0.0
