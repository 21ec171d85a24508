"""Pick the delivery log store for the configured backend."""

from __future__ import annotations

from pathlib import Path

from eventrelay.config.model import Config
from eventrelay.deliverylog.base import DeliveryLog


def open_log(config: Config) -> DeliveryLog:
    if config.storage.backend == "jetstream":
        from eventrelay.deliverylog.jetstream import JetStreamDeliveryLog

        return JetStreamDeliveryLog(servers=config.storage.servers, stream=config.storage.stream,
                                    replicas=config.storage.replicas, path=Path(config.storage.path))
    from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog

    return SQLiteDeliveryLog(Path(config.storage.path) / "deliverylog.db")
