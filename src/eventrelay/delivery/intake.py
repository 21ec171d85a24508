"""The event sink of a process (``ingest.sink.EventSink``): append to the queue, hand new jobs to
this process's delivery workers where the queue can (``delivery/handoff.py``), and wake the
workers of the rest once the append is durable.

    sink = QueueSink(queue)                 # ingest only (serve --role ingest)
    sink = QueueSink(queue, engine)         # ingest and delivery in one process
    fresh = await sink.submit(items)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from eventrelay.core.records import Accepted
from eventrelay.delivery.handoff import append_with_handoff
from eventrelay.queue.base import Calls, HandoffQueue, Queue

if TYPE_CHECKING:
    from eventrelay.delivery.engine import DeliveryEngine


class QueueSink:
    def __init__(self, queue: Queue, engine: DeliveryEngine | None = None) -> None:
        self.queue = queue
        self.engine = engine
        self._calls = Calls(queue)
        self._handoff = queue if isinstance(queue, HandoffQueue) else None

    def submit(self, items: Sequence[Accepted]) -> asyncio.Future[list[bool]]:
        engine = self.engine
        if engine is None:
            return self._calls.append(items)
        wanted: dict[str, int] = {}  # destination -> this append's jobs for it
        for item in items:
            for destination in item.destinations:
                wanted[destination] = wanted.get(destination, 0) + 1
        covered: set[str] = set()  # destinations whose new jobs were all handed over: no claim needed
        stored = None
        if self._handoff is not None and wanted:
            stored = append_with_handoff(self._handoff, engine, items, wanted, covered)
        if stored is None:
            stored = self._calls.append(items)

        def wake(done: asyncio.Future[list[bool]]) -> None:
            if not done.cancelled() and done.exception() is None and any(done.result()):
                engine.notify(wanted.keys() - covered)

        stored.add_done_callback(wake)
        return stored
