"""What a replay refuses before it stores anything: no archive (a backend without one, or one
turned off), an unknown or disabled destination, a bad condition."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.core.errors import ExpressionError, ReplayError
from eventrelay.delivery.replay import ReplayRequest, Replays
from eventrelay.delivery.replay_select import Selection
from eventrelay.deliverylog.memory import MemoryDeliveryLog
from eventrelay.destinations.base import Destination
from eventrelay.queue.archive import ArchiveLimits, Window
from eventrelay.queue.memory import MemoryQueue
from eventrelay.queue.sqlite import SQLiteQueue

from .conftest import FakeDestination

SETTINGS = {"lambda": "fn", "region": "us-west-2", "role_address": "arn:aws:iam::123456789012:role/r"}
WINDOW = Window(0.0, 1e12)


class Targets:
    def __init__(self, *configs: DestinationConfig) -> None:
        self.configs = {c.name: c for c in configs}

    @property
    def destinations(self) -> Mapping[str, Destination]:
        return {name: FakeDestination(name) for name in self.configs}  # type: ignore[misc]

    def destination_config(self, name: str) -> DestinationConfig | None:
        return self.configs.get(name)


def targets() -> Targets:
    return Targets(
        DestinationConfig.model_validate({"name": "on", "settings": SETTINGS}),
        DestinationConfig.model_validate({"name": "off", "settings": SETTINGS, "enabled": False}),
    )


async def test_a_backend_without_an_archive_refuses_replays() -> None:
    replays = Replays(MemoryQueue(), MemoryDeliveryLog(), targets(), lambda names: None)
    with pytest.raises(ReplayError, match="keeps no archive") as refused:
        await replays.start(ReplayRequest("on", WINDOW))
    assert refused.value.status == 409


async def test_an_archive_turned_off_unknown_and_disabled_destinations_and_bad_conditions(tmp_path: Path) -> None:
    off = SQLiteQueue(tmp_path / "off.db", archive=None)
    on = SQLiteQueue(tmp_path / "on.db", archive=ArchiveLimits(3600.0, 10**9))
    await off.start()
    await on.start()
    try:
        with pytest.raises(ReplayError, match="archive is off"):
            await Replays(off, MemoryDeliveryLog(), targets(), lambda names: None).dry_run(ReplayRequest("on", WINDOW))
        replays = Replays(on, MemoryDeliveryLog(), targets(), lambda names: None)
        with pytest.raises(ReplayError, match="no destination named 'nope'") as unknown:
            await replays.start(ReplayRequest("nope", WINDOW))
        assert unknown.value.status == 404
        with pytest.raises(ReplayError, match="disabled"):
            await replays.start(ReplayRequest("off", WINDOW))
        with pytest.raises(ExpressionError):
            await replays.start(ReplayRequest("on", WINDOW, Selection(where="type =")))
        assert await replays.list() == []  # nothing was stored
    finally:
        await on.close()
        await off.close()
