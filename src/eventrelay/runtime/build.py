"""Build the parts a Config names: the queue backend, the delivery log store, each destination.

The composition root's factories: the lower packages know nothing of the configuration file.
"""

from __future__ import annotations

from pathlib import Path

from eventrelay.config.model import Config, JetStreamStorage
from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.deliverylog.base import DeliveryLog
from eventrelay.destinations.base import Destination
from eventrelay.destinations.kind import BuildSpec
from eventrelay.queue.archive import ArchiveLimits
from eventrelay.queue.base import Queue

JETSTREAM_AGE_MARGIN = 3600.0  # seconds beyond the longest retry window before a stream message may age out
DEFAULT_JETSTREAM_AGE = 7 * 86400.0  # without an archive: the stream's own default (queue/jetstream)


def open_queue(config: Config) -> Queue:
    """The queue backend named by ``storage.backend``."""
    storage = config.storage
    if isinstance(storage, JetStreamStorage):
        from eventrelay.queue.jetstream import JetStreamQueue

        return JetStreamQueue(
            servers=storage.servers,
            stream=storage.stream,
            replicas=storage.replicas,
            max_events=storage.max_events,
            dedup_window=config.ingest.dedup_window,
            max_age=jetstream_max_age(config),
        )
    from eventrelay.queue.sqlite import SQLiteQueue

    return SQLiteQueue(
        Path(storage.path) / "queue.db",
        max_events=storage.max_events,
        dedup_window=config.ingest.dedup_window,
        archive=archive_limits(config),
    )


def archive_limits(config: Config) -> ArchiveLimits | None:
    """The archive the configuration asks for (None: ``archive: {enabled: false}``)."""
    archive = config.archive
    return ArchiveLimits(archive.retention, archive.max_bytes) if archive.enabled else None


def jetstream_max_age(config: Config) -> float:
    """The work stream's max age: the archive's retention (the stream is the archive), never shorter
    than a destination's retry window plus a margin (a retrying event must not age out)."""
    windows = [d.delivery.retry_window for d in config.destinations]
    floor = max(windows, default=0.0) + JETSTREAM_AGE_MARGIN
    return max(config.archive.retention if config.archive.enabled else DEFAULT_JETSTREAM_AGE, floor)


def open_log(config: Config) -> DeliveryLog:
    """The delivery log store of the configured backend (JetStream: the stream, with this
    node's query index under ``storage.path``)."""
    storage = config.storage
    if isinstance(storage, JetStreamStorage):
        from eventrelay.deliverylog.jetstream import JetStreamDeliveryLog

        return JetStreamDeliveryLog(
            servers=storage.servers, stream=storage.stream, replicas=storage.replicas, path=Path(storage.path)
        )
    from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog

    return SQLiteDeliveryLog(Path(storage.path) / "deliverylog.db")


def build_destination(dest: DestinationConfig, config: Config) -> Destination:
    """A destination instance from its configuration entry, built by its registered type."""
    return dest.kind.build(
        BuildSpec(
            name=dest.name,
            settings=dest.settings,
            concurrency=dest.delivery.concurrency,
            workspace_id=config.external_id_for(None),  # the External ID all events share, if any
        )
    )
