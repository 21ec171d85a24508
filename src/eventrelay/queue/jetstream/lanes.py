"""Per-user ordering on JetStream: per-lane subjects and a claim filter over a lane ledger.

A work message of an ordered destination is published on its lane's subject
(``P.job.<destination>.<source>.<lane token>``, the token a hash of the user) with the lane in
``Er-Lane``. The KV bucket ``P_LANES`` holds, per (destination, lane), the stream sequence of the
lane's last settled message (``done``), and, while its head waits for a retry, when (``wait``).

The destination's durable consumer (shared by every delivery process) hands out messages as
usual; a claim keeps only lane heads. A message at sequence ``s`` of lane ``L``:

    s <= done                   settled already (a crash between the ledger and the ack): acked, not sent again
    the first message of L      the head: claimed
    after ``done`` is s
    otherwise                   behind its head: NAK'd with a delay (no attempt counted), offered again later

Settling a head (ack, dead letter) writes ``done = s`` first, then acks: the ledger never runs
ahead of what the delivery log holds, and a lost ack shows as ``s <= done``. The stream keeps
settled messages (limits retention), so "the next after ``done``" is one ``next_by_subj`` read.

Bound: a message behind its head waits as an unacknowledged delivery of the consumer, so a
destination's blocked messages count against its ``max_ack_pending`` (``MAX_ACK_PENDING``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from eventrelay.core.records import Accepted, Job
from eventrelay.queue.base import BlockedLane
from eventrelay.queue.jetstream.messages import lane_header, lane_token_of
from eventrelay.queue.jetstream.names import H_LANE, Names
from eventrelay.storage.nats import open_bucket, started, translate

log = logging.getLogger(__name__)

LANE_TOKEN_CHARS = 24  # hex of SHA-256 (96 bits): two users share a lane by accident ~never
RECHECK_MIN = 0.05  # seconds before a message behind its head is offered again, doubling ...
RECHECK_MAX = 2.0  # ... up to this (or until the head's retry is due, when the ledger says)


def lane_token(lane: str) -> str:
    return hashlib.sha256(lane.encode()).hexdigest()[:LANE_TOKEN_CHARS]


def ledger_key(destination: str, token: str) -> str:
    """KV keys allow fewer characters than subjects: the destination is hashed too."""
    return f"{hashlib.sha256(destination.encode()).hexdigest()[:16]}.{token}"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a claimed message stands in its lane."""

    kind: str  # "head" | "settled" | "behind"
    delay: float = 0.0  # behind: seconds until it is offered again


class LaneLedger:
    """The ``P_LANES`` bucket and the head checks of one queue."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, names: Names) -> None:
        self._js = js
        self._kv = kv
        self._names = names

    async def place(self, msg: Msg, destination: str, token: str) -> Place:
        seq = msg.metadata.sequence.stream
        done, wait = await self._state(destination, token)
        if seq <= done:
            return Place("settled")
        try:
            first = await self._js.get_msg(
                self._names.stream, done + 1, subject=self._names.lane_filter(destination, token), next=True
            )
        except NotFoundError:
            return Place("head")  # nothing between: this one is next (it may not be readable yet)
        if first.seq is None or first.seq >= seq:
            return Place("head")
        backoff = min(RECHECK_MAX, RECHECK_MIN * 2 ** max(0, msg.metadata.num_delivered - 1))
        return Place("behind", max(backoff, (wait or 0.0) - time.time()))

    async def settled(self, job: Job) -> None:
        """``job``, its lane's head, is done: its lane moves on (written before the ack)."""
        token, seq = job.meta.get("lane"), int(job.meta.get("seq", "0"))
        if not token or not seq:
            return
        done, _ = await self._state(job.destination, token)
        if seq > done:
            await self._kv.put(ledger_key(job.destination, token), json.dumps({"done": seq}).encode())

    async def waits(self, job: Job, due_at: float) -> None:
        """``job``, its lane's head, is due again at ``due_at``: the messages behind it need not
        be offered before. Best effort: a failure only means they are offered sooner."""
        token = job.meta.get("lane")
        if not token:
            return
        try:
            done, _ = await self._state(job.destination, token)
            value = json.dumps({"done": done, "wait": due_at}).encode()
            await self._kv.put(ledger_key(job.destination, token), value)
        except (TimeoutError, NatsError, ValueError) as exc:
            log.debug("jetstream: lane wait of %s not written: %s", job.message_id, exc)

    async def _state(self, destination: str, token: str) -> tuple[int, float | None]:
        try:
            entry = await self._kv.get(ledger_key(destination, token))
        except KeyNotFoundError:
            return 0, None
        state = json.loads(entry.value or b"{}")
        wait = state.get("wait")
        return int(state.get("done", 0)), float(wait) if wait is not None else None


Reply = Callable[[Msg, bytes], Awaitable[None]]


class Lanes:
    """Everything the queue does for ordered destinations: which they are (``order``), the lane
    subject of a new job (``subject``), the claim filter (``heads``), the ledger writes of a
    settled (``settled``) or waiting (``waits``) head, and the blocked lanes seen (``view``)."""

    def __init__(self, names: Names) -> None:
        self._names = names
        self._ordered: frozenset[str] = frozenset()
        self._ledger: LaneLedger | None = None
        self.view = LaneView()

    async def start(self, js: JetStreamContext, *, replicas: int, max_age: float) -> None:
        kv = await open_bucket(js, self._names.lanes_bucket, ttl=max_age, replicas=replicas)
        self._ledger = LaneLedger(js, kv, self._names)

    def order(self, destinations: Collection[str]) -> None:
        self._ordered = frozenset(destinations)

    def ordered(self, destination: str) -> bool:
        return destination in self._ordered

    def subject(self, item: Accepted, destination: str, headers: dict[str, str]) -> str:
        """The subject of ``item``'s job for ``destination``; a lane's adds ``Er-Lane`` to ``headers``."""
        if item.lane is None or destination not in self._ordered:
            return self._names.job_subject(destination, item.source)
        headers[H_LANE] = lane_header(item.lane)
        return self._names.lane_subject(destination, item.source, lane_token(item.lane))

    async def heads(self, msgs: list[Msg], destination: str, reply: Reply) -> list[Msg]:
        return await keep_heads(self._ledger_(), self.view, msgs, destination, reply)

    async def settled(self, job: Job) -> None:
        if "lane" in job.meta:
            try:
                await self._ledger_().settled(job)
            except (TimeoutError, NatsError) as exc:
                raise translate(exc, "settle") from exc
            self.view.settled(job)

    async def waits(self, job: Job, due_at: float, *, counted: bool) -> None:
        if "lane" in job.meta:
            self.view.retrying(job, due_at, counted=counted)
            await self._ledger_().waits(job, due_at)

    def _ledger_(self) -> LaneLedger:
        return started(self._ledger)


async def keep_heads(ledger: LaneLedger, view: LaneView, msgs: list[Msg], destination: str, reply: Reply) -> list[Msg]:
    """The messages of ``msgs`` that may start now: lane heads (and messages without a lane).
    The others are answered through ``reply``: settled ones acked, those behind a head NAK'd
    with a delay (a NAK counts no attempt: the attempts bucket is written only by a retry)."""
    laned = [(m, lane_token_of(m.subject)) for m in msgs]
    places = await asyncio.gather(*(ledger.place(m, destination, t) for m, t in laned if t is not None))
    found = iter(places)
    keep: list[Msg] = []
    for msg, token in laned:
        if token is None:
            keep.append(msg)
            continue
        place = next(found)
        if place.kind == "head":
            keep.append(msg)
        elif place.kind == "settled":
            await reply(msg, b"+ACK")
        else:
            view.behind(destination, token, msg.metadata.sequence.stream)
            await reply(msg, b"-NAK " + json.dumps({"delay": int(place.delay * 1e9)}).encode())
    return keep


@dataclass(slots=True)
class _Retrying:
    lane: str
    message_id: str
    attempts: int
    due_at: float
    behind: set[int]


class LaneView:
    """This process's view of blocked lanes (``OrderedQueue.blocked_lanes`` on JetStream): the
    lanes whose head it is retrying, with the messages it has seen waiting behind them. Each
    delivery process sees the lanes it works on; the exact count lives only in the stream."""

    def __init__(self) -> None:
        self._lanes: dict[tuple[str, str], _Retrying] = {}

    def retrying(self, job: Job, due_at: float, *, counted: bool) -> None:
        token = job.meta.get("lane")
        if token is None or job.lane is None:
            return
        found = self._lanes.get((job.destination, token))
        attempts = job.attempts + (1 if counted else 0)
        if found is None or found.message_id != job.message_id:
            self._lanes[(job.destination, token)] = _Retrying(job.lane, job.message_id, attempts, due_at, set())
        else:
            found.attempts, found.due_at = attempts, due_at

    def behind(self, destination: str, token: str, seq: int) -> None:
        found = self._lanes.get((destination, token))
        if found is not None:
            found.behind.add(seq)

    def settled(self, job: Job) -> None:
        token = job.meta.get("lane")
        if token is not None:
            self._lanes.pop((job.destination, token), None)

    def blocked(self, destination: str, limit: int) -> list[BlockedLane]:
        now = time.time()
        lanes = [
            BlockedLane(r.lane, 1 + len(r.behind), r.message_id, r.attempts, r.due_at if r.due_at > now else None)
            for (d, _), r in self._lanes.items()
            if d == destination
        ]
        return sorted(lanes, key=lambda b: -b.events)[:limit]
