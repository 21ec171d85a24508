"""One read of the archive stream: an ephemeral pull consumer (memory storage, no acks, removed at
the end, or by the server ``SCAN_IDLE`` after a crash) pulled in bounded batches on the archive's
own connection.

A pull that comes back empty is taken as "no more" only after a check: a status message (a
leader change, a consumer the server dropped) also ends a pull, and a replay that took that for
the end of its window would skip the rest. ``ended`` looks up the next message after the last one
delivered; if the read should have seen it, the read fails (the replay's step tries again).
"""

from __future__ import annotations

import contextlib
import types
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from eventrelay.core.errors import StorageError
from eventrelay.queue.jetstream.fetch import pull

SCAN_IDLE = 30.0  # seconds after which the server removes a read's consumer a crash left behind


class Scan:
    """``async with Scan(...) as scan``: ``await scan.batch(n)`` until it returns [], then
    ``await scan.ended(bound)``. From ``start_seq``, else from ``start_time`` (epoch seconds),
    else from the stream's first message."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        stream: str,
        subject: str,
        *,
        start_seq: int | None = None,
        start_time: float | None = None,
        headers_only: bool = False,
    ) -> None:
        self._nc, self._js, self.stream, self.subject = nc, js, stream, subject
        self._config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE,
            filter_subject=subject,
            headers_only=headers_only or None,
            inactive_threshold=SCAN_IDLE,
            mem_storage=True,
            num_replicas=1,
            replay_policy=api.ReplayPolicy.INSTANT,
        )
        if start_seq is not None:
            self._config.deliver_policy, self._config.opt_start_seq = api.DeliverPolicy.BY_START_SEQUENCE, start_seq
        elif start_time is not None and start_time > 0:
            self._config.deliver_policy = api.DeliverPolicy.BY_START_TIME
            self._config.opt_start_time = datetime.fromtimestamp(start_time, UTC)
        else:
            self._config.deliver_policy = api.DeliverPolicy.ALL
        self._consumer = ""
        self.position = 1  # the sequence after the last message delivered
        self._done = False

    async def __aenter__(self) -> Scan:
        info = await self._js.add_consumer(self.stream, self._config)
        self._consumer = info.name or ""
        self.position = (info.delivered.stream_seq if info.delivered else 0) + 1
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        with contextlib.suppress(TimeoutError, NatsError):  # else the server removes it after SCAN_IDLE
            await self._js.delete_consumer(self.stream, self._consumer)

    async def batch(self, n: int) -> list[Msg]:
        """Up to ``n`` messages available now ([]: none, or the pull was cut short: see ``ended``)."""
        if self._done:
            return []
        msgs = await pull(self._nc, self.stream, self._consumer, max(1, n))
        if msgs:
            self.position = msgs[-1].metadata.sequence.stream + 1
            self._done = msgs[-1].metadata.num_pending == 0
        return msgs

    async def ended(self, bound: int, until: float | None = None) -> None:
        """Fail unless no message on the subject lies between the last one delivered and ``bound``
        (nor, with ``until``, one stored at or before it): the read saw everything it should."""
        try:
            raw = await self._js.get_msg(self.stream, self.position, subject=self.subject, next=True)
        except NotFoundError:
            return
        seq = raw.seq or 0
        late = until is not None and raw.time is not None and raw.time.timestamp() > until
        if seq <= bound and not late:
            raise StorageError(f"a read of the archive stopped at sequence {self.position} before {bound}; try again")
