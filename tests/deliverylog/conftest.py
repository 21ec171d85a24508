"""Fixtures of the delivery-log tests: every store runs the same contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventrelay.deliverylog.base import DeliveryLog
from eventrelay.deliverylog.memory import MemoryDeliveryLog
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog


@pytest.fixture(params=["memory", "sqlite"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DeliveryLog]:
    store: DeliveryLog = (
        MemoryDeliveryLog() if request.param == "memory" else SQLiteDeliveryLog(tmp_path / "deliverylog.db")
    )
    await store.start()
    yield store
    await store.close()
