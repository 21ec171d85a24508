"""The delivery log of a JetStream deployment: one shared record, a local projection per process.

Every process writes attempts to the stream ``P_LOG`` (subjects ``P.log.rec.<destination>``
and ``P.log.redriven.<destination>``; replicated like the queue). ``record`` returns once
JetStream acknowledged them, so the record is as durable as the queue's jobs and exists before
the queue settles a job (at-least-once).

Every process that answers queries (the admin API, the page, the CLI) consumes that stream into
a local ``SQLiteDeliveryLog`` (opened on the first query, so a node nobody asks never pays for
it) and queries it: the statistics, percentiles and samples are the
SQLite log's code, unchanged. A query first waits (up to ``CATCH_UP_WAIT``) until the projection
has applied everything the stream held when the query came in, so a node sees the attempts
every other node recorded before the question was asked.

Why this store: the attempts must survive the loss of any one node and be visible from every
node, which the JetStream cluster already provides (no second database to run); queries need
indexes, grouping and percentiles, which SQLite already provides. The projection is a cache:
delete it and it is rebuilt from the stream (which keeps ``max_age``, default 7 days, as the
SQLite log does).

The projection lives at ``<storage.path>/deliverylog-jetstream.db`` with the last applied stream
sequence beside it, so a restart resumes where it stopped. A second process on the same machine
with the same ``storage.path`` finds the file locked and keeps its projection in a temporary
directory instead. If a process dies between applying a batch and saving the sequence, that one
batch is applied again on restart: the deliveries table is exact (upsert), the attempt history
may show that batch's lines twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api

from eventrelay.core.errors import StorageError
from eventrelay.core.outcome import Category
from eventrelay.core.records import AttemptRecord
from eventrelay.deliverylog.base import DeliveryRow, Stats
from eventrelay.deliverylog.sqlite import DEFAULT_MAX_AGE, SQLiteDeliveryLog
from eventrelay.storage.nats import API_TIMEOUT, connect, ensure_stream, redact, started, token, translate

log = logging.getLogger(__name__)

CATCH_UP_WAIT = 2.0  # seconds a query waits for this node's projection to apply what others recorded
FIRST_CATCH_UP_WAIT = 60.0  # the first query after start may replay days of history into the projection
MAX_MESSAGE_BYTES = 512 * 1024  # records per message stay well under NATS's default 1 MB max_payload
PROJECTION = "deliverylog-jetstream.db"


class JetStreamDeliveryLog:
    """DeliveryLog Protocol: writes to JetStream, reads a local SQLite projection of it."""

    def __init__(
        self, servers: list[str], stream: str, replicas: int, path: Path, *, max_age: float = DEFAULT_MAX_AGE
    ) -> None:
        self.servers = list(servers)
        self.stream = f"{stream}_LOG"
        self.prefix = f"{stream}.log"
        self.replicas = replicas
        self.path = Path(path)
        self.max_age = max_age
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: Subscription | None = None
        self._projection: SQLiteDeliveryLog | None = None
        self._lock_file: IO[str] | None = None
        self._temp_dir: Path | None = None
        self._seq_file = self.path / (PROJECTION + ".seq")
        self._applied = 0  # last stream sequence applied to the projection
        self._applied_changed = asyncio.Condition()
        self._results: dict[int, int] = {}  # stream seq of a redrive mark -> rows it changed here
        self._apply_lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._first_read = False  # the next read is the first since the projection opened
        self._stream_created = ""  # identifies the stream the saved sequence belongs to

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self._nc, self._js = await connect(self.servers, "eventrelay-deliverylog")
            self._stream_created = await self._ensure_stream()
        except (TimeoutError, NatsError, OSError) as exc:
            raise StorageError(
                f"cannot open the delivery log stream {self.stream} on {redact(self.servers)}: {exc}"
            ) from exc

    async def _open_projection(self) -> SQLiteDeliveryLog:
        """The local projection, opened and fed from the stream on the first read: a process
        nobody queries (a delivery-only node) never pays for applying every node's attempts."""
        async with self._open_lock:
            if self._projection is not None:
                return self._projection
            js = self._jsc()  # refuses before start
            db = self._projection_path(self._stream_created)
            projection = SQLiteDeliveryLog(db, max_age=self.max_age)
            await projection.start()
            self._projection = projection
            try:
                start_at = api.ConsumerConfig(
                    opt_start_seq=self._applied + 1, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE
                )
                self._sub = await js.subscribe(
                    f"{self.prefix}.>", cb=self._apply, ordered_consumer=True, config=start_at
                )
            except (TimeoutError, NatsError) as exc:
                raise StorageError(f"cannot read the delivery log stream {self.stream}: {exc}") from exc
            self._first_read = True
            return projection

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(NatsError):
                await self._sub.unsubscribe()
            self._sub = None
        if self._nc is not None:
            with contextlib.suppress(NatsError):
                await self._nc.close()
            self._nc = None
        async with self._apply_lock:
            if self._projection is not None:
                await self._projection.close()
                self._projection = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # -- writes ----------------------------------------------------------------------------------
    async def record(self, attempts: Sequence[AttemptRecord]) -> None:
        by_dest: dict[str, list[AttemptRecord]] = {}
        for a in attempts:
            by_dest.setdefault(a.destination, []).append(a)
        pubs = [
            self._publish(f"{self.prefix}.rec.{token(dest)}", chunk)
            for dest, records in by_dest.items()
            for chunk in _chunks([_encode(a) for a in records])
        ]
        await asyncio.gather(*pubs)

    async def redriven(self, destination: str, message_ids: Sequence[str] | None, at: float) -> int:
        """Shared like attempts: every node's projection marks the rows; returns this node's count."""
        op = orjson.dumps(
            {
                "destination": destination,
                "ids": list(message_ids) if message_ids is not None else None,
                "at": at,
            }
        )
        await self._open_projection()
        ack = await self._publish(f"{self.prefix}.redriven.{token(destination)}", op)
        await self._wait_applied(ack.seq, CATCH_UP_WAIT * 5)
        return self._results.pop(ack.seq, 0)

    # -- reads -----------------------------------------------------------------------------------
    async def deliveries(
        self,
        *,
        destination: str | None = None,
        category: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        projection = await self._caught_up()
        return await projection.deliveries(
            destination=destination, category=category, status=status, since=since, until=until, limit=limit
        )

    async def attempts(self, message_id: str, destination: str | None = None) -> list[AttemptRecord]:
        return await (await self._caught_up()).attempts(message_id, destination)

    async def stats(self, destination: str, since: float, until: float) -> Stats:
        return await (await self._caught_up()).stats(destination, since, until)

    async def samples(self, destination: str, category: str | None = None, limit: int = 5) -> list[AttemptRecord]:
        return await (await self._caught_up()).samples(destination, category, limit)

    async def replay_counts(self, replay_id: str) -> dict[str, int]:
        return await (await self._caught_up()).replay_counts(replay_id)

    # -- internals -------------------------------------------------------------------------------
    def _jsc(self) -> JetStreamContext:
        return started(self._js, "the delivery log")

    async def _publish(self, subject: str, payload: bytes) -> api.PubAck:
        try:
            return await self._jsc().publish(subject, payload, timeout=API_TIMEOUT)
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "delivery log publish") from exc

    async def _ensure_stream(self) -> str:
        """Make or update the log stream; returns its creation time (identifies this stream)."""
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}.>"],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            num_replicas=self.replicas,
            max_age=self.max_age,
        )
        js = self._jsc()
        await ensure_stream(js, config)
        info = await js.stream_info(self.stream)
        return str(info.created)

    def _projection_path(self, stream_created: str) -> Path:
        """This process's projection file: the shared one under ``path`` if free, else a temporary one."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = open(self.path / (PROJECTION + ".lock"), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            self._temp_dir = Path(tempfile.mkdtemp(prefix="eventrelay-deliverylog-"))
            self._seq_file = self._temp_dir / (PROJECTION + ".seq")
            return self._temp_dir / PROJECTION
        self._lock_file = lock
        db = self.path / PROJECTION
        saved = _read_seq(self._seq_file)
        if saved is not None and saved[0] == stream_created:
            self._applied = saved[1]
        else:  # a new stream (or no saved position): rebuild from its start
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
        return db

    async def _apply(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        async with self._apply_lock:
            projection = self._projection
            if projection is None or seq <= self._applied:
                return
            try:
                if msg.subject.startswith(f"{self.prefix}.rec."):
                    await projection.record([_decode(r) for r in orjson.loads(msg.data)])
                else:
                    op = orjson.loads(msg.data)
                    self._results[seq] = await projection.redriven(op["destination"], op["ids"], op["at"])
            except (StorageError, ValueError, KeyError, TypeError) as exc:
                log.error("delivery log: record %d not applied to the local projection: %s", seq, exc)
            self._applied = seq
            _write_seq(self._seq_file, self._stream_created, seq)
        async with self._applied_changed:
            self._applied_changed.notify_all()

    async def _caught_up(self) -> SQLiteDeliveryLog:
        projection = await self._open_projection()
        within, self._first_read = (FIRST_CATCH_UP_WAIT if self._first_read else CATCH_UP_WAIT), False
        try:
            info = await self._jsc().stream_info(self.stream)
        except (TimeoutError, NatsError) as exc:
            log.warning("delivery log: stream unreachable (%s); answering from the local projection", exc)
        else:
            await self._wait_applied(info.state.last_seq, within)
        return projection

    async def _wait_applied(self, seq: int, within: float) -> None:
        deadline = time.monotonic() + within
        async with self._applied_changed:
            while self._applied < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("delivery log: projection at %d, stream at %d; answering anyway", self._applied, seq)
                    return
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._applied_changed.wait(), left)


def _encode(a: AttemptRecord) -> dict[str, Any]:
    d = dataclasses.asdict(a)
    d["category"] = str(a.category)
    d["event"] = base64.b64encode(a.event).decode()
    return d


def _decode(d: dict[str, Any]) -> AttemptRecord:
    d = dict(d)
    d["category"] = Category(d["category"])
    d["event"] = base64.b64decode(d["event"])
    return AttemptRecord(**d)


def _chunks(records: list[dict[str, Any]]) -> list[bytes]:
    """JSON arrays of records, each under ``MAX_MESSAGE_BYTES`` (one record always fits: events <= 32 KB)."""
    out: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for r in records:
        encoded = orjson.dumps(r)
        if current and size + len(encoded) > MAX_MESSAGE_BYTES:
            out.append(b"[" + b",".join(current) + b"]")
            current, size = [], 0
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        out.append(b"[" + b",".join(current) + b"]")
    return out


def _read_seq(path: Path) -> tuple[str, int] | None:
    try:
        data = json.loads(path.read_text())
        return str(data["stream"]), int(data["seq"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_seq(path: Path, created: str, seq: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"stream": created, "seq": seq}))
    os.replace(tmp, path)
