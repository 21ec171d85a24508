"""Leases longer than a JetStream consumer's AckWait, kept alive by repeated in-progress acks.

JetStream has one AckWait per consumer; a claim or ``extend`` asking for a longer lease starts
a task here that repeats ``+WPI`` on the message every half AckWait until the lease ends or the
job settles. If the process dies, the repeats stop and the job returns after AckWait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nats.errors import Error as NatsError

from eventrelay.core.errors import StorageError

log = logging.getLogger(__name__)

IN_PROGRESS = b"+WPI"  # JetStream's in-progress ack: AckWait restarts


class Keepalive:
    """The repeating in-progress acks of this process's claimed messages, by reply subject."""

    def __init__(self, publish: Callable[[str, bytes], Awaitable[None]]) -> None:
        self._publish = publish
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, handle: str, ack_wait: float, lease_seconds: float) -> None:
        until = time.monotonic() + lease_seconds
        self._tasks[handle] = asyncio.create_task(self._keep(handle, ack_wait, until))

    def stop(self, handle: str) -> None:
        task = self._tasks.pop(handle, None)
        if task is not None:
            task.cancel()

    def stop_all(self) -> None:
        for handle in list(self._tasks):
            self.stop(handle)

    async def _keep(self, handle: str, ack_wait: float, until: float) -> None:
        while time.monotonic() + ack_wait < until:
            await asyncio.sleep(min(ack_wait / 2, until - ack_wait - time.monotonic()))
            try:
                await self._publish(handle, IN_PROGRESS)
            except (NatsError, StorageError) as exc:
                log.warning("jetstream: in-progress ack failed (the job returns after AckWait): %s", exc)
                return
