"""Pick the queue backend named by ``storage.backend``."""

from __future__ import annotations

from pathlib import Path

from eventrelay.config.model import Config
from eventrelay.queue.base import Queue


def open_queue(config: Config) -> Queue:
    storage = config.storage
    if storage.backend == "jetstream":
        from eventrelay.queue.jetstream import JetStreamQueue

        return JetStreamQueue(
            servers=storage.servers, stream=storage.stream, replicas=storage.replicas,
            max_events=storage.max_events, dedup_window=config.ingest.dedup_window,
        )
    from eventrelay.queue.sqlite import SQLiteQueue

    return SQLiteQueue(
        Path(storage.path) / "queue.db", max_events=storage.max_events, dedup_window=config.ingest.dedup_window
    )
