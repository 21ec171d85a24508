"""The attempt state of retried jobs, in the KV bucket ``P_ATTEMPTS`` (names in ``names.py``).

A JetStream message cannot change on NAK, so when a job is retried (a NAK with delay) its attempt
count, its first attempt's time and the reply subject of that delivery are put here, under
``<destination hash>.<stream sequence>-<identity hash>``: read back when the message comes again,
listed per destination when a redrive asks for the jobs waiting for a retry (the reply subject acks
the waiting message: JetStream accepts an ack through any of its deliveries' reply subjects), and
deleted when the job is settled, so what is listed is what waits. A lease that lapsed (a crash
mid-attempt) is not an attempt and writes nothing. Entries expire with the stream's ``max_age``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from eventrelay.core.records import Job
from eventrelay.storage.nats import open_bucket, translate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A job waiting for a delayed retry: its KV key, the work message's stream sequence and the
    reply subject of its last delivery (None for an entry written by an older version)."""

    key: str
    seq: int
    reply: str | None


class AttemptStore:
    """Attempt state of retried jobs (see the module docstring)."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, *, ttl: float, replicas: int) -> AttemptStore:
        return cls(await open_bucket(js, bucket, ttl=ttl, replicas=replicas))

    async def read(self, job: Job, delivered: int) -> Job:
        """``job`` (delivered ``delivered`` times) with the attempts and first attempt time kept for it."""
        if delivered <= 1:
            return job
        attempts, first, batch = 0, None, None
        try:
            entry = await self._get(_key(job)) or await self._get(_legacy_key(job))
            if entry is not None:
                attempts, first, batch = int(entry["attempts"]), float(entry["first"]), entry.get("batch")
        except (TimeoutError, NatsError, ValueError, KeyError, TypeError) as exc:
            log.warning("jetstream: attempt count of %s unreadable (%s); counting deliveries", job.message_id, exc)
            attempts = delivered - 1
        return replace(job, attempts=attempts, first_attempt_at=first, batch=batch if isinstance(batch, str) else None)

    async def retried(self, job: Job, now: float) -> None:
        """``job``'s attempt failed and it waits for a retry: count the attempt, keep the reply subject."""
        state: dict[str, object] = {
            "attempts": job.attempts + 1,
            "first": job.first_attempt_at or now,
            "reply": job.handle,
        }
        if job.batch is not None:
            state["batch"] = job.batch  # the whole batch it is retried with, read back when redelivered
        try:
            await self.kv.put(_key(job), json.dumps(state).encode())
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "retry") from exc

    async def settled(self, job: Job) -> None:
        """``job`` is done (delivered or dead-lettered): it waits for nothing any more."""
        if job.attempts > 0:
            await self.forget(_key(job))

    async def forget(self, key: str) -> None:
        try:
            await self.kv.delete(key)
        except (TimeoutError, NatsError) as exc:  # a stale entry only costs a redrive a lookup
            log.warning("jetstream: cannot delete attempt state %s: %s", key, exc)

    async def waiting(self, destination: str, message_ids: set[str] | None) -> list[Waiting]:
        """The jobs of ``destination`` (all, or of those message ids) waiting for a retry."""
        idents = None if message_ids is None else {_identity(destination, m) for m in message_ids}
        found = []
        try:
            watcher = await self.kv.watch(f"{_destination_key(destination)}.>", ignore_deletes=True)
            try:
                async for entry in watcher:  # the current entries, then None
                    if entry is None:
                        break
                    seq, _, ident = entry.key.partition(".")[2].partition("-")
                    if seq.isdigit() and (idents is None or ident in idents):
                        found.append(Waiting(entry.key, int(seq), _reply(entry.value)))
            finally:
                await watcher.stop()  # type: ignore[no-untyped-call]
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "redrive") from exc
        return found

    async def _get(self, key: str) -> dict[str, Any] | None:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        value = json.loads(entry.value or b"{}")
        return value if isinstance(value, dict) else None


def _reply(value: bytes | None) -> str | None:
    try:
        reply = json.loads(value or b"{}").get("reply")
    except (ValueError, AttributeError):
        return None
    return reply if isinstance(reply, str) else None


def _key(job: Job) -> str:
    """Listable per destination; bound to the job's identity (a re-created stream reuses sequences)."""
    return (
        f"{_destination_key(job.destination)}.{job.meta.get('seq', '0')}-{_identity(job.destination, job.message_id)}"
    )


def _legacy_key(job: Job) -> str:
    """The key of versions before redrive took retrying jobs (read, never written)."""
    return f"{job.meta.get('seq', '0')}-{_identity(job.destination, job.message_id)}"


def _destination_key(destination: str) -> str:
    return hashlib.sha1(destination.encode()).hexdigest()[:12]  # KV keys allow fewer characters than names


def _identity(destination: str, message_id: str) -> str:
    return hashlib.sha1(f"{destination}/{message_id}".encode()).hexdigest()[:16]
