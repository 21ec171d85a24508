"""Fixtures of the delivery-log tests: every store runs the same contract."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventrelay.deliverylog.base import DeliveryLog
from eventrelay.deliverylog.jetstream import JetStreamDeliveryLog
from eventrelay.deliverylog.memory import MemoryDeliveryLog
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
from tests.jetstream.natsserver import shared_server_url

_streams = itertools.count(1)


@pytest.fixture(params=["memory", "sqlite", "jetstream"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DeliveryLog]:
    store: DeliveryLog
    if request.param == "memory":
        store = MemoryDeliveryLog()
    elif request.param == "sqlite":
        store = SQLiteDeliveryLog(tmp_path / "deliverylog.db")
    else:  # one shared nats-server, a stream of its own per test
        url = await shared_server_url(request)
        store = JetStreamDeliveryLog([url], f"DLCONTRACT{next(_streams)}", 1, tmp_path / "projection")
    await store.start()
    yield store
    await store.close()
