"""The ``jetstream`` entry of the queue contract suite (tests/contract/conftest.py)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from eventrelay.queue.jetstream import JetStreamQueue

from .natsserver import shared_server_url

if TYPE_CHECKING:
    from tests.contract.conftest import Setting


async def open_jetstream(setting: Setting) -> JetStreamQueue:
    """A queue on the session's nats-server; its stream is named after the test's directory, so
    opening twice with one setting reaches the same stored data."""
    url = await shared_server_url(setting.request)
    stream = "C" + hashlib.sha1(str(setting.tmp_path).encode()).hexdigest()[:12].upper()
    return JetStreamQueue(
        [url], stream=stream, replicas=1, max_events=setting.max_events, dedup_window=setting.dedup_window
    )
