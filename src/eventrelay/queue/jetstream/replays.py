"""Replays on JetStream: their records in the KV bucket ``P_REPLAYS``, their jobs on subjects of
their own in the work stream (names in ``names.py``).

- A record is one JSON value under the replay's id. Every change is a compare-and-set on the
  key's revision, so of several processes running the same replay's task (every delivery
  process resumes running replays) one moves the cursor at a time, and a cancel is never undone.
- ``enqueue_replay`` publishes the step's jobs first, on ``P.job.<destination>.<source>.replay.<id>``
  with ``Nats-Msg-Id = replay/<id>/<archive seq>/<destination>``, then moves the cursor with a
  compare-and-set. A crash (or a lost compare-and-set) between the two leaves the cursor where it
  was: the step is done again and the work stream's duplicate window (``ingest.dedup_window``,
  default 24 h) drops the jobs already published. Bound: a step repeated more than that window
  after the first try (a process down longer than it in the middle of a step) publishes that
  step's jobs (at most the replay's ``limit``) a second time. SQLite has no such bound: its jobs
  and cursor are one commit.
- A replay's job is deleted from the work stream when it is acked or dead-lettered (the work
  stream otherwise keeps settled messages), so the messages on its subjects are exactly its jobs
  waiting or in flight: ``replay_waiting`` is one stream-info call. Live traffic pays nothing:
  only jobs that carry ``Er-Replay`` do this. Its dead letters go to
  ``P.dead.<destination>.replay.<id>`` (counted the same way; a redrive moves them back).
- Cancelling sets the record's state, then purges the replay's subjects (waiting and in-flight
  jobs; an attempt under way still ends, and its ack finds nothing to settle). A step that
  published while the cancel ran sees the compare-and-set fail and deletes what it published.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from eventrelay.core.errors import StorageError
from eventrelay.core.records import Job
from eventrelay.queue.archive import ReplayRecord, ReplayState, Window
from eventrelay.queue.jetstream.archive import ArchiveStream
from eventrelay.queue.jetstream.messages import replay_headers
from eventrelay.queue.jetstream.names import Names
from eventrelay.storage.nats import API_TIMEOUT, open_bucket, started, translate

log = logging.getLogger(__name__)

ERR_NO_SEQUENCE = 10043  # JetStream: a message delete found no message at that sequence
CAS_TRIES = 20  # compare-and-set attempts of a state change before giving up (others keep moving the cursor)


class ReplayStore:
    """The replays of one stream prefix (see the module docstring)."""

    def __init__(self, names: Names, archive: ArchiveStream) -> None:
        self.names = names
        self.archive = archive
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._destinations: dict[str, str] = {}  # replay id -> destination (never changes)

    async def start(self, nc: Client, js: JetStreamContext, *, replicas: int) -> None:
        self._nc, self._js = nc, js
        self._kv = await open_bucket(js, self.names.replays_bucket, ttl=0.0, replicas=replicas)  # kept, as SQLite's

    # -- records ---------------------------------------------------------------------------------
    async def create(self, record: ReplayRecord) -> None:
        try:
            await self._bucket().create(record.id, _encode(record))
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "create replay") from exc
        self._destinations[record.id] = record.destination

    async def get(self, replay_id: str) -> ReplayRecord | None:
        found = await self._read(replay_id)
        return None if found is None else found[0]

    async def listed(self, destination: str | None) -> list[ReplayRecord]:
        records: list[ReplayRecord] = []
        try:
            watcher = await self._bucket().watchall(ignore_deletes=True)
            try:
                async for entry in watcher:  # the current entries, then None
                    if entry is None:
                        break
                    record = _decode(entry.value)
                    if record is not None and destination in (None, record.destination):
                        records.append(record)
            finally:
                await watcher.stop()  # type: ignore[no-untyped-call]
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "list replays") from exc
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    # -- the replay's steps ----------------------------------------------------------------------
    async def enqueue(self, replay_id: str, cursor: int, new_cursor: int, seqs: Sequence[int], skipped: int) -> bool:
        found = await self._read(replay_id)
        if found is None:
            return False
        record, revision = found
        if record.state != "running" or record.cursor != cursor:
            return False
        events = await self.archive.events(seqs)  # an event removed meanwhile is not sent (as on SQLite)
        js = self._jsc()
        try:
            acks = await asyncio.gather(
                *(
                    js.publish(
                        self.names.replay_subject(record.destination, e.source, replay_id),
                        e.body,
                        timeout=API_TIMEOUT,
                        headers=replay_headers(e, record.destination, replay_id),
                    )
                    for e in events
                )
            )
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "replay enqueue") from exc
        moved = dataclasses.replace(
            record, cursor=new_cursor, skipped=record.skipped + skipped, enqueued=record.enqueued + len(events)
        )
        if await self._swap(replay_id, moved, revision):
            return True
        now = await self.get(replay_id)
        if now is None or now.state != "running":  # cancelled while this step published: take them back
            await self._withdraw([a.seq for a in acks])
        return False

    async def waiting(self, replay_id: str) -> int:
        destination = await self._destination(replay_id)
        if destination is None:
            return 0
        return await self._count(self.names.stream, self.names.replay_filter(destination, replay_id))

    async def dead(self, replay_id: str) -> int:
        destination = await self._destination(replay_id)
        if destination is None:
            return 0
        return await self._count(self.names.dead_stream, self.names.dead_replay_subject(destination, replay_id))

    async def end(self, replay_id: str, state: ReplayState) -> int:
        """Set the state (compare-and-set, retried while the cursor moves); a cancel then purges
        the replay's jobs. Returns how many were removed."""
        for _ in range(CAS_TRIES):
            found = await self._read(replay_id)
            if found is None or found[0].state != "running":
                return 0
            record, revision = found
            if await self._swap(replay_id, dataclasses.replace(record, state=state, finished_at=time.time()), revision):
                break
        else:
            raise StorageError(f"replay {replay_id}: its record kept changing; try again")
        if state != "cancelled":
            return 0
        return await self._purge(self.names.replay_filter(record.destination, replay_id))

    async def settled(self, job: Job) -> None:
        """A replay's job was delivered or dead-lettered: it is no longer one of the replay's
        waiting jobs (deleted before the ack: a crash in between leaves nothing counted)."""
        try:
            await delete_message(self._client(), self.names.stream, int(job.meta.get("seq", "0")))
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "settle") from exc

    # -- internals -------------------------------------------------------------------------------
    async def _read(self, replay_id: str) -> tuple[ReplayRecord, int] | None:
        try:
            entry = await self._bucket().get(replay_id)
        except KeyNotFoundError:
            return None
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "read replay") from exc
        record = _decode(entry.value)
        if record is None or entry.revision is None:
            return None
        self._destinations[replay_id] = record.destination
        return record, entry.revision

    async def _swap(self, replay_id: str, record: ReplayRecord, revision: int) -> bool:
        try:
            await self._bucket().update(replay_id, _encode(record), last=revision)
        except KeyWrongLastSequenceError:
            return False
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "update replay") from exc
        return True

    async def _destination(self, replay_id: str) -> str | None:
        if replay_id not in self._destinations:
            await self._read(replay_id)
        return self._destinations.get(replay_id)

    async def _count(self, stream: str, subjects: str) -> int:
        try:
            info = await self._jsc().stream_info(stream, subjects_filter=subjects)
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "replay count") from exc
        return sum((info.state.subjects or {}).values())

    async def _purge(self, subjects: str) -> int:
        """Remove every message on ``subjects`` of the work stream; how many there were."""
        request = json.dumps({"filter": subjects}).encode()
        try:
            answer = await _api(self._client(), f"$JS.API.STREAM.PURGE.{self.names.stream}", request)
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "cancel replay") from exc
        except _ApiRefused as exc:
            raise StorageError(f"JetStream cancel replay failed: {exc}") from None
        return int(answer.get("purged", 0))

    async def _withdraw(self, seqs: list[int]) -> None:
        for seq in seqs:
            try:
                await delete_message(self._client(), self.names.stream, seq)
            except (TimeoutError, NatsError, StorageError) as exc:
                log.warning("jetstream: a job of a cancelled replay (seq %d) was not withdrawn: %s", seq, exc)

    def _bucket(self) -> KeyValue:
        return started(self._kv)

    def _client(self) -> Client:
        return started(self._nc)

    def _jsc(self) -> JetStreamContext:
        return started(self._js)


async def delete_message(nc: Client, stream: str, seq: int) -> bool:
    """Delete the message at ``seq`` of ``stream`` without overwriting its bytes on disk (the
    client's ``delete_msg`` erases: ~20x slower, and these are copies of archived events); False
    when there is none (purged by a cancel, deleted by an earlier try)."""
    request = json.dumps({"seq": seq, "no_erase": True}).encode()
    try:
        await _api(nc, f"$JS.API.STREAM.MSG.DELETE.{stream}", request)
    except _ApiRefused as exc:
        if exc.code == ERR_NO_SEQUENCE:
            return False
        raise StorageError(f"JetStream delete of message {seq} failed: {exc}") from None
    return True


class _ApiRefused(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code


async def _api(nc: Client, subject: str, request: bytes) -> dict[str, Any]:
    """One JetStream API request; raises ``_ApiRefused`` with the server's error code."""
    reply = await nc.request(subject, request, timeout=API_TIMEOUT)
    answer: dict[str, Any] = json.loads(reply.data or b"{}")
    error = answer.get("error")
    if isinstance(error, dict):
        raise _ApiRefused(int(error.get("err_code", 0)), str(error.get("description", error)))
    return answer


def _encode(record: ReplayRecord) -> bytes:
    return json.dumps(dataclasses.asdict(record)).encode()


def _decode(value: bytes | None) -> ReplayRecord | None:
    try:
        data: dict[str, Any] = json.loads(value or b"")
        data["window"] = Window(**data["window"])
        return ReplayRecord(**data)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("jetstream: a replay record is unreadable (%s); left out", exc)
        return None
