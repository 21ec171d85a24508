"""Build the parts a Config names: the queue backend, the delivery log store, each destination.

The composition root's factories: the lower packages know nothing of the configuration file.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from eventrelay.config.model import Config, JetStreamStorage
from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.delivery.pauses import NO_SHARING, FilePauses, PauseBoard
from eventrelay.deliverylog.base import DeliveryLog
from eventrelay.destinations.base import Destination
from eventrelay.destinations.kind import BuildSpec
from eventrelay.queue.archive import ArchiveLimits
from eventrelay.queue.base import Queue
from eventrelay.storage.dirlock import lock_data_dir
from eventrelay.storage.space import Space

QUEUE_FILE = "queue.db"
LOG_FILE = "deliverylog.db"

JETSTREAM_AGE_MARGIN = 3600.0  # seconds beyond the longest retry window before a stream message may age out
DEFAULT_JETSTREAM_AGE = 7 * 86400.0  # without an archive: the stream's own default (queue/jetstream)


@dataclass(frozen=True, slots=True)
class DataLayout:
    """The store files of the configured backend in ``storage.path`` (name -> schema version),
    checked at start and recorded in the data directory's marker (``storage/datadir.py``)."""

    directory: Path
    backend: str
    files: dict[str, int] = field(default_factory=dict)
    integrity_check: bool = True

    def paths(self) -> list[Path]:
        return [self.directory / name for name in self.files]


def data_layout(config: Config) -> DataLayout:
    """JetStream keeps its data in the stream (the local delivery-log index is rebuilt from
    it): no file of its directory is one to lose."""
    storage = config.storage
    directory = Path(storage.path)
    if isinstance(storage, JetStreamStorage):
        return DataLayout(directory, storage.backend)
    from eventrelay.queue.sqlite.schema import SCHEMA_VERSION

    files = {QUEUE_FILE: SCHEMA_VERSION, LOG_FILE: 0}
    return DataLayout(directory, storage.backend, files, storage.integrity_check)


def open_space(config: Config) -> Space | None:
    """The free-space rules of the SQLite data directory (``storage/space.py``); JetStream's
    data is in its stream."""
    storage = config.storage
    if isinstance(storage, JetStreamStorage):
        return None
    return Space(Path(storage.path), floor=storage.min_free_space)


def open_queue(config: Config, space: Space | None = None, *, shared: bool = False) -> Queue:
    """The queue backend named by ``storage.backend``. ``shared``: one of several processes of
    a deployment (``serve --workers``) on the SQLite file (JetStream is shared by design)."""
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
            archive=archive_limits(config),
        )
    from eventrelay.queue.sqlite import SQLiteQueue

    return SQLiteQueue(
        Path(storage.path) / QUEUE_FILE,
        max_events=storage.max_events,
        dedup_window=config.ingest.dedup_window,
        shared=shared,
        archive=archive_limits(config),
        space=space,
    )


def archive_limits(config: Config) -> ArchiveLimits | None:
    """The archive the configuration asks for (None: ``archive: {enabled: false}``)."""
    archive = config.archive
    return ArchiveLimits(archive.retention, archive.max_bytes) if archive.enabled else None


def jetstream_max_age(config: Config) -> float:
    """The work stream's max age (the archive is a stream of its own, ``queue/jetstream/archive.py``):
    as long as the archive's retention, never shorter than a destination's retry window plus a
    margin (a retrying event must not age out)."""
    windows = [d.delivery.retry_window for d in config.destinations]
    floor = max(windows, default=0.0) + JETSTREAM_AGE_MARGIN
    return max(config.archive.retention if config.archive.enabled else DEFAULT_JETSTREAM_AGE, floor)


def open_log(config: Config, space: Space | None = None) -> DeliveryLog:
    """The delivery log store of the configured backend (JetStream: the stream, with this
    node's query index under ``storage.path``)."""
    storage = config.storage
    if isinstance(storage, JetStreamStorage):
        from eventrelay.deliverylog.jetstream import JetStreamDeliveryLog

        return JetStreamDeliveryLog(
            servers=storage.servers, stream=storage.stream, replicas=storage.replicas, path=Path(storage.path)
        )
    from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog

    return SQLiteDeliveryLog(Path(storage.path) / LOG_FILE, space=space)


@contextlib.asynccontextmanager
async def open_stores(config: Config) -> AsyncIterator[tuple[Queue, DeliveryLog]]:
    """The queue and delivery log of ``config``, started, for a command that works on them without
    a server (``redrive``, ``replay``); closed at the end. The SQLite queue belongs to one process:
    the data directory's lock is held meanwhile, refused (naming the server's pid) while one runs."""
    lock = lock_data_dir(Path(config.storage.path)) if config.storage.backend == "sqlite" else None
    try:
        queue, log = open_queue(config), open_log(config)
        await queue.start()
        try:
            await log.start()
            try:
                yield queue, log
            finally:
                await log.close()
        finally:
            await queue.close()
    finally:
        if lock is not None:
            lock.release()


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


def per_worker(dest: DestinationConfig, workers: int) -> DestinationConfig:
    """``dest`` with the share of its ``concurrency`` that one of ``workers`` processes of a
    deployment runs: ``ceil(concurrency / workers)``, so the deployment runs at least the
    configured concurrency and at most ``workers - 1`` more."""
    if workers <= 1:
        return dest
    share = math.ceil(dest.delivery.concurrency / workers)
    return dest.model_copy(update={"delivery": dest.delivery.model_copy(update={"concurrency": share})})


# Under ``storage.path``: the destination-wide pauses the workers of a deployment share.
PAUSES_DIR = "pauses"


def pause_board(config: Config, workers: int) -> PauseBoard:
    """Where the destination-wide pauses of ``workers`` processes meet: a directory in the SQLite
    data directory when there are several, else none (one process keeps its own)."""
    storage = config.storage
    if workers <= 1 or isinstance(storage, JetStreamStorage):
        return NO_SHARING
    return FilePauses(Path(storage.path) / PAUSES_DIR)
