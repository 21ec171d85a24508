"""The ``jetstream`` queue backend: NATS JetStream shared by many ingest and delivery processes.

Layout and names: see ``jetstream_names``. In short:

- ``append`` publishes one message per (event, destination) on ``P.job.<destination>.<source>``
  with ``Nats-Msg-Id = "<destination>/<messageId>"`` and returns only after every PubAck (a
  PubAck with ``duplicate`` means the stream's duplicate window already holds it). Events no
  destination wanted go to ``P.unrouted.<source>`` (``Nats-Msg-Id = "/<messageId>"``). One
  message per destination keeps each destination's consumer reading only its own work (exact
  depth, no skipping) and lets a resend complete an append a crash cut short.
- Each destination has one durable pull consumer (``d-<destination>``, explicit acks,
  ``AckWait`` = the first claim's lease, i.e. attempt timeout + margin) shared by every delivery
  process: JetStream hands each message to one claimer at a time.
- ``retry`` is a NAK with delay. A message cannot change on NAK, so the attempt count and the
  first attempt's time of a retried job live in a small KV bucket ``P_ATTEMPTS`` keyed by the
  message (written on retry, read only when a message comes back; entries expire with
  ``max_age``). A lease that lapsed (a crash mid-attempt) is not an attempt, as in SQLite.
  ``extend`` is an in-progress ack. ``dead_letter`` publishes to ``P_DEAD`` (no age limit) and
  acks; ``redrive`` republishes from there as a fresh message and deletes the dead letter. The
  fresh message has a new stream sequence, so no attempt count in ``P_ATTEMPTS`` (keyed by
  sequence) applies to it: attempts start at 0. It carries ``Er-Redriven-At`` (the re-drive
  time, where its retry window starts) next to the unchanged ``Er-Received-At``.
- The stream keeps messages by age (limits retention, ``max_age`` default 7 days), acked ones
  included: it doubles as the replay archive. ``max_age`` must exceed every destination's
  retry window (default 4 h): a job still waiting after ``max_age`` (a destination disabled for
  a week) is dropped by JetStream. Waiting jobs are bounded by ``max_events``, counted from the
  consumers (pending + unacknowledged), refreshed at most every ``BOUND_REFRESH`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from eventrelay.core.errors import DiskFull, QueueFull, StorageError
from eventrelay.core.records import Accepted, DeadStatus, Job
from eventrelay.queue.jetstream_fetch import pull
from eventrelay.queue.jetstream_names import (
    H_ATTEMPTS,
    H_CALL_TYPE,
    H_DEAD_AT,
    H_DESTINATION,
    H_MESSAGE_ID,
    H_REASON,
    H_RECEIVED_AT,
    H_REDRIVEN_AT,
    H_SOURCE,
    H_STATUS,
    MSG_ID,
    Names,
)
from eventrelay.storage.nats import API_TIMEOUT, connect, ensure_stream, redact

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = 7 * 86400.0  # archive + safety margin over the 4 h default retry window (Kafka's default)
ACK_WAIT_SLACK = 0.5  # a lease this much longer than AckWait is kept alive by in-progress acks
MAX_ACK_PENDING = 20_000  # jobs claimed or waiting for a delayed retry per destination, across all processes
SETTLE_TIMEOUT = 5  # ack/nak confirmation from the server
BOUND_REFRESH = 0.5  # seconds between recounts of waiting jobs for the max_events bound
# JetStream error codes (nats-server errors.json).
ERRS_DISK = {10023, 10047}  # insufficient resources / insufficient storage resources


class JetStreamQueue:
    """Queue Protocol on JetStream. ``servers``: NATS URLs; ``stream``: the name prefix."""

    def __init__(
        self,
        servers: list[str],
        stream: str,
        replicas: int,
        max_events: int,
        dedup_window: float,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        connect_name: str = "eventrelay",
    ) -> None:
        self.servers = list(servers)
        self.names = Names(stream)
        self.replicas = replicas
        self.max_events = max_events
        self.max_age = max_age
        # JetStream requires duplicate_window <= max_age; 0 would mean the server default (2 min).
        self.dedup_window = max(0.001, min(dedup_window, max_age))
        self._connect_name = connect_name
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ack_wait: dict[str, float] = {}  # destination -> AckWait its consumer has
        self._consumer_lock = asyncio.Lock()
        self._kv: KeyValue | None = None
        self._claimed: set[str] = set()  # handles claimed here and not settled
        self._keepalive: dict[str, asyncio.Task[None]] = {}  # handle -> repeating in-progress acks
        self._waiting = 0  # waiting jobs counted at the last refresh + published since
        self._waiting_at = -1e18

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self._nc, self._js = await connect(self.servers, self._connect_name)
            await self._ensure_stream(self.names.stream, self.names.work_subjects(), self.max_age)
            await self._ensure_stream(self.names.dead_stream, self.names.dead_subjects(), None)
            self._kv = await self._open_attempts_bucket()
        except (TimeoutError, NatsError, OSError) as exc:
            raise StorageError(
                f"cannot open JetStream stream {self.names.stream} on {redact(self.servers)}: {exc}"
            ) from exc

    async def close(self) -> None:
        if self._nc is None:
            return
        for handle in list(self._keepalive):
            self._stop_keepalive(handle)
        nc, self._nc = self._nc, None
        try:
            for handle in list(self._claimed):  # unsettled claims return to the queue now, not after AckWait
                await nc.publish(handle, b"-NAK")
            self._claimed.clear()
            await nc.flush(timeout=SETTLE_TIMEOUT)
        except (TimeoutError, NatsError) as exc:
            log.warning("jetstream: closing with unflushed acks (they are redelivered after AckWait): %s", exc)
        finally:
            await nc.close()

    # -- ingest ----------------------------------------------------------------------------------
    async def append(self, items: Sequence[Accepted]) -> list[bool]:
        jobs = sum(len(i.destinations) for i in items)
        await self._check_bound(jobs)
        owners: list[int] = []
        pubs: list[Awaitable[api.PubAck]] = []
        for n, item in enumerate(items):
            headers = _headers(item)
            for dest in item.destinations:
                hdr = {**headers, H_DESTINATION: dest, MSG_ID: Names.work_msg_id(dest, item.message_id)}
                pubs.append(self._publish(self.names.job_subject(dest, item.source), item.body, hdr))
                owners.append(n)
            if not item.destinations:
                hdr = {**headers, MSG_ID: Names.unrouted_msg_id(item.message_id)}
                pubs.append(self._publish(self.names.unrouted_subject(item.source), item.body, hdr))
                owners.append(n)
        acks = await asyncio.gather(*pubs, return_exceptions=True)
        new = [False] * len(items)
        for n, ack in zip(owners, acks, strict=True):
            if isinstance(ack, BaseException):
                raise _storage_error(ack, "publish") from ack
            if not ack.duplicate:
                new[n] = True
                self._waiting += 1 if items[n].destinations else 0
        return new

    # -- delivery --------------------------------------------------------------------------------
    async def claim(self, destination: str, limit: int, lease_seconds: float) -> list[Job]:
        ack_wait = await self._ensure_consumer(destination, lease_seconds)
        try:
            msgs = await pull(self._client(), self.names.stream, Names.durable(destination), max(1, limit))
        except (TimeoutError, NatsError) as exc:
            raise _storage_error(exc, "claim") from exc
        jobs = await asyncio.gather(*(self._job(m, destination) for m in msgs))
        self._claimed.update(j.handle for j in jobs)
        if lease_seconds > ack_wait + ACK_WAIT_SLACK:
            for job in jobs:
                self._start_keepalive(job.handle, ack_wait, lease_seconds)
        return list(jobs)

    async def extend(self, job: Job, lease_seconds: float) -> None:
        """In-progress ack: AckWait restarts. JetStream has one AckWait per consumer, so a lease
        longer than it is kept by repeating the in-progress ack until the lease ends (or the job
        settles); if this process dies, the repeats stop and the job returns after AckWait."""
        self._stop_keepalive(job.handle)
        try:
            await self._client().publish(job.handle, b"+WPI")
        except NatsError as exc:
            raise _storage_error(exc, "extend") from exc
        ack_wait = self._ack_wait.get(job.destination, lease_seconds)
        if lease_seconds > ack_wait + ACK_WAIT_SLACK:
            self._start_keepalive(job.handle, ack_wait, lease_seconds)

    def _start_keepalive(self, handle: str, ack_wait: float, lease_seconds: float) -> None:
        until = time.monotonic() + lease_seconds
        self._keepalive[handle] = asyncio.create_task(self._keep(handle, ack_wait, until))

    async def _keep(self, handle: str, ack_wait: float, until: float) -> None:
        while time.monotonic() + ack_wait < until:
            await asyncio.sleep(min(ack_wait / 2, until - ack_wait - time.monotonic()))
            try:
                await self._client().publish(handle, b"+WPI")
            except (NatsError, StorageError) as exc:
                log.warning("jetstream: in-progress ack failed (the job returns after AckWait): %s", exc)
                return

    def _stop_keepalive(self, handle: str) -> None:
        task = self._keepalive.pop(handle, None)
        if task is not None:
            task.cancel()

    async def ack(self, job: Job) -> None:
        await self._settle(job, b"+ACK")

    async def retry(self, job: Job, due_at: float) -> None:
        now = time.time()
        state = {"attempts": job.attempts + 1, "first": job.first_attempt_at or now}
        try:
            await self._attempts().put(_attempts_key(job), json.dumps(state).encode())
        except (TimeoutError, NatsError) as exc:
            raise _storage_error(exc, "retry") from exc
        delay = due_at - now
        await self._settle(job, b"-NAK " + json.dumps({"delay": int(delay * 1e9)}).encode() if delay > 0 else b"-NAK")

    async def dead_letter(self, job: Job, status: DeadStatus, reason: str) -> None:
        headers = {
            H_MESSAGE_ID: job.message_id,
            H_SOURCE: job.source,
            H_CALL_TYPE: job.call_type,
            H_RECEIVED_AT: repr(job.received_at),
            H_DESTINATION: job.destination,
            H_STATUS: status,
            H_REASON: _header_value(reason),
            H_ATTEMPTS: str(job.attempts + 1),
            H_DEAD_AT: repr(time.time()),
            # the work message's stream sequence makes a repeated dead_letter of one job idempotent
            MSG_ID: f"dead/{job.destination}/{job.message_id}/{job.meta.get('seq', '')}",
        }
        try:
            await self._publish(self.names.dead_subject(job.destination), job.body, headers)
        except (TimeoutError, NatsError) as exc:
            raise _storage_error(exc, "dead letter") from exc
        await self._settle(job, b"+ACK")

    async def redrive(self, destination: str, message_ids: Sequence[str] | None = None) -> int:
        wanted = set(message_ids) if message_ids is not None else None
        js = self._jsc()
        moved, seq = 0, 1
        subject = self.names.dead_subject(destination)
        redriven_at = time.time()
        while True:
            try:
                raw = await js.get_msg(self.names.dead_stream, seq, subject=subject, next=True)
            except NotFoundError:
                return moved
            except (TimeoutError, NatsError) as exc:
                raise _storage_error(exc, "redrive") from exc
            assert raw.seq is not None
            seq = raw.seq + 1
            headers = dict(raw.headers or {})
            if wanted is not None and headers.get(H_MESSAGE_ID) not in wanted:
                continue
            await self._redrive_one(destination, raw.seq, headers, raw.data or b"", redriven_at)
            moved += 1

    async def depth(self, destination: str | None = None) -> int:
        """Per consumer: not yet delivered + delivered and not acked (leased or waiting for a
        delayed retry). A destination whose consumer does not exist yet (never claimed) has
        every message on its subjects waiting."""
        js = self._jsc()
        try:
            consumers = {i.name: _waiting(i) for i in await js.consumers_info(self.names.stream)}
            if destination is not None:
                name = Names.durable(destination)
                if name in consumers:
                    return consumers[name]
                return sum((await self._subject_counts(self.names.job_filter(destination))).values())
            unclaimed = 0
            for subject, count in (await self._subject_counts(self.names.job_filter_all())).items():
                if f"d-{subject.split('.')[-2]}" not in consumers:  # P.job.<destination>.<source>
                    unclaimed += count
        except (TimeoutError, NatsError) as exc:
            raise _storage_error(exc, "depth") from exc
        return unclaimed + sum(n for name, n in consumers.items() if name.startswith("d-"))

    async def _subject_counts(self, subjects: str) -> dict[str, int]:
        info = await self._jsc().stream_info(self.names.stream, subjects_filter=subjects)
        return dict(info.state.subjects or {})

    # -- internals -------------------------------------------------------------------------------
    def _client(self) -> Client:
        if self._nc is None:
            raise StorageError("the JetStream queue is not started")
        return self._nc

    def _jsc(self) -> JetStreamContext:
        if self._js is None:
            raise StorageError("the JetStream queue is not started")
        return self._js

    def _attempts(self) -> KeyValue:
        if self._kv is None:
            raise StorageError("the JetStream queue is not started")
        return self._kv

    async def _open_attempts_bucket(self) -> KeyValue:
        js = self._jsc()
        bucket = self.names.attempts_bucket
        try:
            return await js.key_value(bucket)
        except NotFoundError:
            config = api.KeyValueConfig(
                bucket=bucket,
                history=1,
                ttl=self.max_age,
                replicas=self.replicas,
                storage=api.StorageType.FILE,
            )
            return await js.create_key_value(config)

    async def _job(self, msg: Msg, destination: str) -> Job:
        headers = msg.headers or {}
        meta = msg.metadata
        attempts, first = 0, None
        job = Job(
            handle=msg.reply,
            destination=destination,
            message_id=headers.get(H_MESSAGE_ID, ""),
            source=headers.get(H_SOURCE, ""),
            call_type=headers.get(H_CALL_TYPE, ""),
            received_at=float(headers.get(H_RECEIVED_AT, "0")),
            body=msg.data,
            meta={"seq": str(meta.sequence.stream)},
            redriven_at=_time_header(headers, H_REDRIVEN_AT),
        )
        if meta.num_delivered <= 1:
            return job
        try:
            entry = await self._attempts().get(_attempts_key(job))
            state = json.loads(entry.value or b"{}")
            attempts, first = int(state["attempts"]), float(state["first"])
        except KeyNotFoundError:
            pass  # delivered again after a lapsed lease, never retried
        except (TimeoutError, NatsError, ValueError, KeyError) as exc:
            log.warning("jetstream: attempt count of %s unreadable (%s); counting deliveries", job.message_id, exc)
            attempts = meta.num_delivered - 1
        return replace(job, attempts=attempts, first_attempt_at=first)

    async def _publish(self, subject: str, body: bytes, headers: dict[str, str]) -> api.PubAck:
        return await self._jsc().publish(subject, body, timeout=API_TIMEOUT, headers=headers)

    async def _settle(self, job: Job, payload: bytes) -> None:
        """Ack/NAK and wait until the server has applied it (so depth and other claimers see it)."""
        self._claimed.discard(job.handle)
        self._stop_keepalive(job.handle)
        try:
            await self._client().request(job.handle, payload, timeout=SETTLE_TIMEOUT)
        except (TimeoutError, NatsError) as exc:
            raise _storage_error(exc, "settle") from exc

    async def _redrive_one(
        self, destination: str, dead_seq: int, headers: dict[str, str], body: bytes, redriven_at: float
    ) -> None:
        fresh = {k: v for k, v in headers.items() if k.startswith("Er-") and not k.startswith("Er-Dead")}
        fresh.pop(H_ATTEMPTS, None)
        fresh[H_REDRIVEN_AT] = repr(redriven_at)  # Er-Received-At stays: the event's receipt
        fresh[MSG_ID] = f"redrive/{destination}/{fresh.get(H_MESSAGE_ID, '')}/{dead_seq}"
        source = fresh.get(H_SOURCE, "unknown")
        try:
            await self._publish(self.names.job_subject(destination, source), body, fresh)
            await self._jsc().delete_msg(self.names.dead_stream, dead_seq)
        except (TimeoutError, NatsError) as exc:
            raise _storage_error(exc, "redrive") from exc
        self._waiting += 1

    async def _check_bound(self, jobs: int) -> None:
        if jobs == 0:
            return
        if time.monotonic() - self._waiting_at > BOUND_REFRESH or self._waiting + jobs > self.max_events:
            self._waiting = await self.depth()
            self._waiting_at = time.monotonic()
        if self._waiting + jobs > self.max_events:
            raise QueueFull(
                f"{self._waiting} jobs are waiting in JetStream; storage.max_events is {self.max_events}",
                retry_after=5.0,
            )

    async def _ensure_stream(self, name: str, subjects: list[str], max_age: float | None) -> None:
        config = api.StreamConfig(
            name=name,
            subjects=subjects,
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            num_replicas=self.replicas,
            max_age=max_age,
            discard=api.DiscardPolicy.NEW,
            duplicate_window=self.dedup_window,
        )
        await ensure_stream(self._jsc(), config)

    async def _ensure_consumer(self, destination: str, lease: float) -> float:
        """The destination's consumer exists; returns its AckWait.

        The consumer is made by the first claim, with that claim's lease as AckWait, and never
        edited afterwards: the server keeps a delayed NAK's due time relative to AckWait, so
        editing AckWait would move every pending retry. Leases longer than AckWait are kept by
        in-progress acks (``extend``). Nothing is lost while no consumer exists: every message
        on a destination's subjects is that destination's work, and the consumer starts at the
        beginning of the stream."""
        have = self._ack_wait.get(destination)
        if have is not None:
            return have
        async with self._consumer_lock:
            if destination in self._ack_wait:
                return self._ack_wait[destination]
            js = self._jsc()
            name = Names.durable(destination)
            try:
                try:
                    info = await js.consumer_info(self.names.stream, name)
                except NotFoundError:
                    config = api.ConsumerConfig(
                        name=name,
                        durable_name=name,
                        filter_subject=self.names.job_filter(destination),
                        ack_policy=api.AckPolicy.EXPLICIT,
                        deliver_policy=api.DeliverPolicy.ALL,
                        ack_wait=lease,
                        max_deliver=-1,
                        max_ack_pending=MAX_ACK_PENDING,
                        replay_policy=api.ReplayPolicy.INSTANT,
                    )
                    info = await js.add_consumer(self.names.stream, config)
            except (TimeoutError, NatsError) as exc:
                raise _storage_error(exc, "create consumer") from exc
            ack_wait = float(info.config.ack_wait or lease)
            self._ack_wait[destination] = ack_wait
            return ack_wait


def _headers(item: Accepted) -> dict[str, str]:
    return {
        H_MESSAGE_ID: item.message_id,
        H_SOURCE: item.source,
        H_CALL_TYPE: item.call_type,
        H_RECEIVED_AT: repr(item.received_at),
    }


def _time_header(headers: dict[str, str], name: str) -> float | None:
    """An epoch-seconds header, or None when absent (or unreadable: treated as absent, logged)."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        log.warning("jetstream: header %s=%r is not a time; ignored", name, value[:40])
        return None


def _attempts_key(job: Job) -> str:
    """The work message's stream sequence, bound to its identity (a re-created stream reuses sequences)."""
    ident = hashlib.sha1(f"{job.destination}/{job.message_id}".encode()).hexdigest()[:16]
    return f"{job.meta.get('seq', '0')}-{ident}"


def _waiting(info: api.ConsumerInfo) -> int:
    return (info.num_pending or 0) + (info.num_ack_pending or 0)


def _header_value(text: str) -> str:
    """Headers are single lines of limited size: fold newlines, cap the length."""
    return " ".join(text.split())[:1000]


def _storage_error(exc: BaseException, what: str) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, APIError):
        if exc.err_code in ERRS_DISK:
            return DiskFull(f"JetStream {what} refused: {exc.description} (storage full)")
        if exc.description and "maximum" in exc.description:
            return QueueFull(f"JetStream {what} refused: {exc.description}")
    detail: Any = exc if str(exc) else type(exc).__name__
    return StorageError(f"JetStream {what} failed: {detail}")
