"""``JetStreamQueue``: the ``Queue`` on NATS JetStream (layout and guarantees: see __init__.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Collection, Sequence

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from eventrelay.core.errors import QueueFull, StorageError
from eventrelay.core.records import Accepted, DeadStatus, Job
from eventrelay.queue.archive import ArchivedEvent, ArchiveInfo, ArchiveLimits, ReplayRecord, ReplayState, Span, Window
from eventrelay.queue.base import BlockedLane
from eventrelay.queue.jetstream.archive import ArchiveStream
from eventrelay.queue.jetstream.attempts import AttemptStore
from eventrelay.queue.jetstream.fetch import pull
from eventrelay.queue.jetstream.keepalive import IN_PROGRESS, Keepalive
from eventrelay.queue.jetstream.lanes import Lanes
from eventrelay.queue.jetstream.messages import dead_headers, job_of, work_headers
from eventrelay.queue.jetstream.names import H_DESTINATION, MSG_ID, Names
from eventrelay.queue.jetstream.redrive import SETTLE_TIMEOUT, Redrive
from eventrelay.queue.jetstream.replays import ReplayStore
from eventrelay.storage.nats import API_TIMEOUT, connect, ensure_stream, redact, started, translate

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = 7 * 86400.0  # archive + safety margin over the 4 h default retry window (Kafka's default)
ACK_WAIT_SLACK = 0.5  # a lease this much longer than AckWait is kept alive by in-progress acks
MAX_ACK_PENDING = 20_000  # jobs claimed or waiting for a delayed retry per destination, across all processes
BOUND_REFRESH = 0.5  # seconds between recounts of waiting jobs for the max_events bound


class JetStreamQueue:
    """Queue Protocol (and ``OrderedQueue``: ``lanes.py``; ``ArchiveQueue``: ``archive.py``,
    ``replays.py``) on JetStream. ``servers``: NATS URLs; ``stream``: the name prefix;
    ``archive``: the archive stream's limits (None: no archive)."""

    def __init__(
        self,
        servers: list[str],
        stream: str,
        replicas: int,
        max_events: int,
        dedup_window: float,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        archive: ArchiveLimits | None = None,
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
        self._retries: AttemptStore | None = None
        self._claimed: dict[str, str] = {}  # handle -> work message's stream sequence, claimed here, not settled
        self._keepalive = Keepalive(lambda handle, payload: self._client().publish(handle, payload))
        self._waiting = 0  # waiting jobs counted at the last refresh + published since
        self._lanes = Lanes(self.names)  # per-user ordering (lanes.py)
        self._waiting_at = -1e18
        self._archive = ArchiveStream(
            self.names, archive, servers=self.servers, replicas=replicas, dedup_window=dedup_window
        )
        self._replays = ReplayStore(self.names, self._archive)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self._nc, self._js = await connect(self.servers, self._connect_name)
            await self._ensure_stream(self.names.stream, self.names.work_subjects(), self.max_age)
            await self._ensure_stream(self.names.dead_stream, self.names.dead_subjects(), None)
            self._retries = await AttemptStore.open(
                self._jsc(), self.names.attempts_bucket, ttl=self.max_age, replicas=self.replicas
            )
            await self._lanes.start(self._jsc(), replicas=self.replicas, max_age=self.max_age)
            await self._archive.start(self._jsc(), self._connect_name)
            await self._replays.start(self._client(), self._jsc(), replicas=self.replicas)
        except (TimeoutError, NatsError, OSError) as exc:
            raise StorageError(
                f"cannot open JetStream stream {self.names.stream} on {redact(self.servers)}: {exc}"
            ) from exc

    async def close(self) -> None:
        if self._nc is None:
            return
        self._keepalive.stop_all()
        await self._archive.close()
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
        archived: list[Awaitable[api.PubAck]] = []  # one each, in the same gather: durable before the 200
        for n, item in enumerate(items):
            if self._archive.enabled:
                archived.append(self._archive.publish(self._jsc(), item))
            headers = work_headers(item)
            for dest in item.destinations:
                hdr = {**headers, H_DESTINATION: dest, MSG_ID: Names.work_msg_id(dest, item.message_id)}
                subject = self._lanes.subject(item, dest, hdr)  # a lane's own for an ordered destination
                pubs.append(self._publish(subject, item.body, hdr))
                owners.append(n)
            if not item.destinations:
                hdr = {**headers, MSG_ID: Names.unrouted_msg_id(item.message_id)}
                pubs.append(self._publish(self.names.unrouted_subject(item.source), item.body, hdr))
                owners.append(n)
        acks = await asyncio.gather(*pubs, *archived, return_exceptions=True)
        for ack in acks[len(pubs) :]:
            if isinstance(ack, BaseException):
                raise translate(ack, "archive publish") from ack
        new = [False] * len(items)
        for n, ack in zip(owners, acks[: len(pubs)], strict=True):
            if isinstance(ack, BaseException):
                raise translate(ack, "publish") from ack
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
            raise translate(exc, "claim") from exc
        if msgs and self._lanes.ordered(destination):
            try:
                msgs = await self._lanes.heads(msgs, destination, self._reply)
            except (TimeoutError, NatsError) as exc:  # the messages not answered return after AckWait
                raise translate(exc, "claim") from exc
        jobs = await asyncio.gather(*(self._job(m, destination) for m in msgs))
        self._claimed.update((j.handle, j.meta.get("seq", "")) for j in jobs)
        if lease_seconds > ack_wait + ACK_WAIT_SLACK:
            for job in jobs:
                self._keepalive.start(job.handle, ack_wait, lease_seconds)
        return list(jobs)

    async def extend(self, job: Job, lease_seconds: float) -> None:
        """In-progress ack: AckWait restarts. JetStream has one AckWait per consumer, so a lease
        longer than it is kept by repeating the in-progress ack until the lease ends (or the job
        settles); if this process dies, the repeats stop and the job returns after AckWait."""
        self._keepalive.stop(job.handle)
        try:
            await self._client().publish(job.handle, IN_PROGRESS)
        except NatsError as exc:
            raise translate(exc, "extend") from exc
        ack_wait = self._ack_wait.get(job.destination, lease_seconds)
        if lease_seconds > ack_wait + ACK_WAIT_SLACK:
            self._keepalive.start(job.handle, ack_wait, lease_seconds)

    async def ack(self, job: Job) -> None:
        await self._lanes.settled(job)
        if job.replay is not None:
            await self._replays.settled(job)
        await self._settle(job, b"+ACK")
        await self._attempts().settled(job)

    async def retry(self, job: Job, due_at: float) -> None:
        now = time.time()
        await self._attempts().retried(job, now)
        delay = due_at - now
        await self._lanes.waits(job, due_at, counted=True)
        await self._settle(job, b"-NAK " + json.dumps({"delay": int(delay * 1e9)}).encode() if delay > 0 else b"-NAK")

    async def postpone(self, job: Job, due_at: float) -> None:
        """A NAK with delay and no write to the attempts bucket: the count stays what it was."""
        await self._lanes.waits(job, due_at, counted=False)
        delay = due_at - time.time()
        await self._settle(job, b"-NAK " + json.dumps({"delay": int(delay * 1e9)}).encode() if delay > 0 else b"-NAK")

    async def dead_letter(self, job: Job, status: DeadStatus, reason: str) -> None:
        headers = dead_headers(job, status, reason)
        subject = self.names.dead_subject(job.destination)
        if job.replay is not None:  # counted as the replay's (replays.py)
            subject = self.names.dead_replay_subject(job.destination, job.replay)
        try:
            await self._publish(subject, job.body, headers)
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "dead letter") from exc
        await self._lanes.settled(job)  # after the dead letter is stored: its lane moves on
        if job.replay is not None:
            await self._replays.settled(job)
        await self._settle(job, b"+ACK")
        await self._attempts().settled(job)

    async def redrive(self, destination: str, message_ids: Sequence[str] | None = None) -> int:
        """Dead letters become fresh work messages; jobs waiting for a delayed retry get a fresh
        work message due now and their waiting message is acked (``redrive.py``). A job claimed
        here is left alone; one being attempted by another process at that very moment may be
        delivered twice (at-least-once)."""
        wanted = set(message_ids) if message_ids is not None else None
        redrive = Redrive(self.names, self._client(), self._jsc(), self._attempts(), self._publish)
        moved = await redrive.run(destination, wanted, set(self._claimed.values()))
        self._waiting += redrive.dead_moved
        return moved

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
                if f"d-{subject.split('.')[2]}" not in consumers:  # P.job.<destination>.<source>[.<lane>]
                    unclaimed += count
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "depth") from exc
        return unclaimed + sum(n for name, n in consumers.items() if name.startswith("d-"))

    # -- the archive and replays (archive.py, replays.py) -----------------------------------------
    async def archive_info(self) -> ArchiveInfo:
        return await self._archive.info()

    async def archive_span(self, window: Window) -> Span:
        return await self._archive.span(window)

    async def archived(self, window: Window, after_seq: int, last_seq: int, limit: int) -> list[ArchivedEvent]:
        return await self._archive.archived(window, after_seq, last_seq, limit)

    async def create_replay(self, replay: ReplayRecord) -> None:
        await self._replays.create(replay)

    async def replays(self, destination: str | None = None) -> list[ReplayRecord]:
        return await self._replays.listed(destination)

    async def replay(self, replay_id: str) -> ReplayRecord | None:
        return await self._replays.get(replay_id)

    async def enqueue_replay(
        self, replay_id: str, cursor: int, new_cursor: int, seqs: Sequence[int], skipped: int
    ) -> bool:
        """The jobs first, then the cursor (a compare-and-set): not one commit as on SQLite; the
        work stream's duplicate window covers a step repeated after a crash (``replays.py``)."""
        return await self._replays.enqueue(replay_id, cursor, new_cursor, seqs, skipped)

    async def replay_waiting(self, replay_id: str) -> int:
        return await self._replays.waiting(replay_id)

    async def replay_dead(self, replay_id: str) -> int:
        return await self._replays.dead(replay_id)

    async def end_replay(self, replay_id: str, state: ReplayState) -> int:
        return await self._replays.end(replay_id, state)

    # -- per-user ordering (lanes.py) ------------------------------------------------------------
    async def order_lanes(self, destinations: Collection[str]) -> None:
        """Publish these destinations' jobs on lane subjects and claim only lane heads (this
        process: every process reads the same configuration)."""
        self._lanes.order(destinations)

    def orders(self, destination: str) -> bool:
        return self._lanes.ordered(destination)

    async def blocked_lanes(self, destination: str, limit: int) -> list[BlockedLane]:
        """The lanes whose head this process is retrying (``lanes.LaneView``)."""
        return self._lanes.view.blocked(destination, limit)

    async def _reply(self, msg: Msg, payload: bytes) -> None:
        await self._client().publish(msg.reply, payload)

    async def _subject_counts(self, subjects: str) -> dict[str, int]:
        info = await self._jsc().stream_info(self.names.stream, subjects_filter=subjects)
        return dict(info.state.subjects or {})

    # -- internals -------------------------------------------------------------------------------
    def _client(self) -> Client:
        return started(self._nc)

    def _jsc(self) -> JetStreamContext:
        return started(self._js)

    def _attempts(self) -> AttemptStore:
        return started(self._retries)

    async def _job(self, msg: Msg, destination: str) -> Job:
        return await self._attempts().read(job_of(msg, destination), msg.metadata.num_delivered)

    async def _publish(self, subject: str, body: bytes, headers: dict[str, str]) -> api.PubAck:
        return await self._jsc().publish(subject, body, timeout=API_TIMEOUT, headers=headers)

    async def _settle(self, job: Job, payload: bytes) -> None:
        """Ack/NAK and wait until the server has applied it (so depth and other claimers see it)."""
        self._claimed.pop(job.handle, None)
        self._keepalive.stop(job.handle)
        try:
            await self._client().request(job.handle, payload, timeout=SETTLE_TIMEOUT)
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "settle") from exc

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
                raise translate(exc, "create consumer") from exc
            ack_wait = float(info.config.ack_wait or lease)
            self._ack_wait[destination] = ack_wait
            return ack_wait


def _waiting(info: api.ConsumerInfo) -> int:
    return (info.num_pending or 0) + (info.num_ack_pending or 0)
