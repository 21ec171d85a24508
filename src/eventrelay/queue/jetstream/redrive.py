"""``redrive`` on JetStream: dead letters and jobs waiting for a delayed retry become work due now.

A dead letter is republished as a fresh work message (``redriven_headers``: a new stream sequence,
so no attempt count applies; ``Er-Redriven-At`` starts its retry window) and deleted from
``P_DEAD``. A job waiting for a retry gets a fresh copy of its work message and the waiting one is
acked through the reply subject kept in the attempts bucket; a lane's head is NAK'd instead, so it
keeps its place. A fresh message goes where the old one was: its lane's subject, or its replay's
(``replays.py``: counted among the replay's waiting jobs again, as a re-driven SQLite job is).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from eventrelay.queue.jetstream.attempts import AttemptStore, Waiting
from eventrelay.queue.jetstream.messages import lane_token_of, redriven_headers
from eventrelay.queue.jetstream.names import H_LANE_TOKEN, H_MESSAGE_ID, H_REPLAY, H_SOURCE, Names
from eventrelay.queue.jetstream.replays import delete_message
from eventrelay.storage.nats import translate

SETTLE_TIMEOUT = 5  # ack/nak confirmation from the server

Publish = Callable[[str, bytes, dict[str, str]], Awaitable[api.PubAck]]


class Redrive:
    """One redrive of one destination (``JetStreamQueue.redrive``)."""

    def __init__(
        self, names: Names, nc: Client, js: JetStreamContext, attempts: AttemptStore, publish: Publish
    ) -> None:
        self.names = names
        self._nc = nc
        self._js = js
        self._attempts = attempts
        self._publish = publish
        self.dead_moved = 0  # dead letters that became work messages (new waiting jobs)

    async def run(self, destination: str, wanted: set[str] | None, claimed: Collection[str]) -> int:
        """Everything of ``destination`` (those message ids) dead or waiting for a retry, except
        the jobs ``claimed`` here (their work messages' stream sequences). Returns how many moved."""
        redriven_at = time.time()
        moved = 0
        for subject in (self.names.dead_subject(destination), self.names.dead_replay_filter(destination)):
            moved += await self._dead(destination, subject, wanted, redriven_at)
        for waiting in await self._attempts.waiting(destination, wanted):
            if str(waiting.seq) not in claimed:
                moved += await self._retry_now(destination, waiting, redriven_at)
        return moved

    async def _dead(self, destination: str, subject: str, wanted: set[str] | None, redriven_at: float) -> int:
        moved, seq = 0, 1
        while True:
            try:
                raw = await self._js.get_msg(self.names.dead_stream, seq, subject=subject, next=True)
            except NotFoundError:
                return moved
            except (TimeoutError, NatsError) as exc:
                raise translate(exc, "redrive") from exc
            assert raw.seq is not None
            seq = raw.seq + 1
            headers = dict(raw.headers or {})
            if wanted is not None and headers.get(H_MESSAGE_ID) not in wanted:
                continue
            await self._dead_one(destination, raw.seq, headers, raw.data or b"", redriven_at)
            moved += 1

    async def _dead_one(
        self, destination: str, dead_seq: int, headers: dict[str, str], body: bytes, redriven_at: float
    ) -> None:
        fresh = redriven_headers(destination, str(dead_seq), headers, redriven_at)
        source = fresh.get(H_SOURCE, "unknown")
        subject = self.names.job_subject(destination, source)
        if H_REPLAY in headers:  # among its replay's jobs again
            subject = self.names.replay_subject(destination, source, headers[H_REPLAY])
        elif H_LANE_TOKEN in headers:  # back in its lane, at its end
            subject = self.names.lane_subject(destination, source, headers[H_LANE_TOKEN])
        try:
            await self._publish(subject, body, fresh)
            await self._js.delete_msg(self.names.dead_stream, dead_seq)
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "redrive") from exc
        self.dead_moved += 1

    async def _retry_now(self, destination: str, waiting: Waiting, redriven_at: float) -> int:
        """A fresh copy of the waiting job's work message, due now; the waiting one acked."""
        try:
            raw = await self._js.get_msg(self.names.stream, waiting.seq)
        except NotFoundError:  # past max_age (or a cancelled replay's): nothing waits any more
            await self._attempts.forget(waiting.key)
            return 0
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "redrive") from exc
        if lane_token_of(raw.subject or "") is not None and waiting.reply is not None:
            # a lane's head keeps its place (a fresh copy would go behind the lane's later events):
            # offered again now, its attempt count forgotten (its window is still its own)
            try:
                await self._nc.request(waiting.reply, b"-NAK", timeout=SETTLE_TIMEOUT)
            except (TimeoutError, NatsError) as exc:
                raise translate(exc, "redrive") from exc
            await self._attempts.forget(waiting.key)
            return 1
        headers = dict(raw.headers or {})
        fresh = redriven_headers(destination, f"w{waiting.seq}", headers, redriven_at)
        subject = self.names.job_subject(destination, fresh.get(H_SOURCE, "unknown"))
        replay = H_REPLAY in headers and raw.subject is not None
        if replay and raw.subject is not None:  # among its replay's jobs (``replays.py``)
            subject = raw.subject
        try:
            await self._publish(subject, raw.data or b"", fresh)
            if replay:  # a replay's job counts while it is in the stream: the old copy goes
                await delete_message(self._nc, self.names.stream, waiting.seq)
            if waiting.reply is not None:
                await self._nc.request(waiting.reply, b"+ACK", timeout=SETTLE_TIMEOUT)
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "redrive") from exc
        await self._attempts.forget(waiting.key)
        return 1
