"""The delivery engine: one ``DestinationWorker`` per destination, one shared ``Settler``.

    engine = DeliveryEngine(queue, log, {"lambda-prod": Target(destination, policy, filters)})
    await engine.start()
    engine.notify(("lambda-prod",))     # ingest appended work: claim now
    await engine.set_targets({...})     # hot reconfigure
    await engine.stop()                 # graceful: in-flight attempts finish and settle

Shutdown and reconfiguration never lose a job: an attempt that cannot finish in time is
cancelled before it is recorded or settled, and its lease returns it to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from eventrelay.config.model import DeliveryPolicy
from eventrelay.core import telemetry
from eventrelay.delivery.batch_worker import BatchWorker
from eventrelay.delivery.filtering import NO_FILTERS
from eventrelay.delivery.handoff import Reservation
from eventrelay.delivery.pauses import NO_SHARING, PauseBoard
from eventrelay.delivery.settler import Settler
from eventrelay.delivery.worker import DestinationWorker
from eventrelay.deliverylog.base import DeliveryLog
from eventrelay.destinations.base import BatchDestination, Destination
from eventrelay.filters.rules import Filters
from eventrelay.queue.base import Queue


class Target(NamedTuple):
    """What one destination's worker runs with."""

    destination: Destination
    policy: DeliveryPolicy
    filters: Filters = NO_FILTERS


# A plain (destination, policy) pair is a Target without filters.
Targets = Mapping[str, Target | tuple[Destination, DeliveryPolicy]]
QUEUE_DEPTH_INTERVAL = 5.0  # seconds between eventrelay_queue_depth refreshes (a COUNT per destination)

log = logging.getLogger("eventrelay.delivery")


class DeliveryEngine:
    def __init__(
        self,
        queue: Queue,
        log: DeliveryLog,
        targets: Targets,
        *,
        rng: random.Random | None = None,
        pauses: PauseBoard = NO_SHARING,
    ) -> None:
        self._queue = queue
        self._pauses = pauses
        self._settler = Settler(queue, log)
        self._targets = _targets(targets)
        self._workers: dict[str, DestinationWorker] = {}
        self._rng = rng
        self._depth_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._started = False
        self._stopping = False  # stop_claiming() was called: no worker claims again

    async def start(self) -> None:
        self._settler.start()
        for name, target in self._targets.items():
            self._start_worker(name, target)
        self._depth_task = asyncio.create_task(self._report_depth(), name="eventrelay-queue-depth")
        self._started = True

    def stop_claiming(self) -> None:
        """The first step of a stop, taken as soon as it is asked for (SIGTERM): no new work is
        claimed or handed over; attempts in flight go on. ``stop`` then waits for them."""
        self._stopping = True
        for worker in self._workers.values():
            worker.stop_claiming()

    async def stop(self, wait_seconds: float | None = None) -> None:
        """Stop claiming; in-flight attempts finish (up to ``wait_seconds``, default each
        destination's attempt timeout plus a grace) and settle; the rest return to the queue by lease."""
        if not self._started:
            return
        self._started = False
        async with self._lock:
            if self._depth_task is not None:
                self._depth_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._depth_task
            workers, self._workers = list(self._workers.values()), {}
            await asyncio.gather(*(w.drain(wait_seconds) for w in workers))
            await self._settler.close()

    async def set_targets(self, targets: Targets) -> None:
        """Hot reconfigure: start new destinations, drain removed ones, swap changed ones.

        A changed destination's new worker starts before the old one drains, so delivery does
        not pause; leases keep the two from taking the same job.
        """
        async with self._lock:
            self._targets = _targets(targets)
            if not self._started or self._stopping:
                return
            draining: list[DestinationWorker] = []
            for name, worker in list(self._workers.items()):
                target = self._targets.get(name)
                if target is None or not _runs(worker, target):
                    worker.stop_claiming()
                    draining.append(self._workers.pop(name))
            for name, target in self._targets.items():
                if name not in self._workers:
                    self._start_worker(name, target)
            await asyncio.gather(*(w.drain() for w in draining))

    def notify(self, destinations: Iterable[str] | None = None) -> None:
        """Work was appended for ``destinations`` (None: any): their workers claim now."""
        if destinations is None:
            for worker in self._workers.values():
                worker.notify()
            return
        for name in destinations:
            found = self._workers.get(name)
            if found is not None:
                found.notify()

    def reserve(self, wanted: Mapping[str, int]) -> Reservation | None:
        """Room in the workers of the destinations of ``wanted`` (destination -> the append's
        jobs for it) for jobs handed over by an append (see ``delivery/handoff.py``); None when
        none has room."""
        room: dict[str, tuple[DestinationWorker, int]] = {}
        for name, jobs in wanted.items():
            worker = self._workers.get(name)
            if worker is not None and (count := worker.reserve(jobs)):
                room[name] = (worker, count)
        return Reservation(room, wanted) if room else None

    def status(self) -> dict[str, dict[str, object]]:
        """Per destination: attempts in flight, the destination-wide pause and the adaptive limit
        of each function (``flow``), for the admin API."""
        return {
            name: {
                "in_flight": w.in_flight,
                "paused": w.paused,
                "paused_until": w.paused_until or None,
                "flow": w.flow_status(),
            }
            for name, w in self._workers.items()
        }

    def _start_worker(self, name: str, target: Target) -> None:
        destination, policy, filters = target
        worker: DestinationWorker
        queue, settler, rng, pauses = self._queue, self._settler, self._rng, self._pauses
        if isinstance(destination, BatchDestination):  # configured with batch: batches in its slots
            worker = BatchWorker(name, destination, policy, queue, settler, rng=rng, filters=filters, pauses=pauses)
        else:
            worker = DestinationWorker(
                name, destination, policy, queue, settler, rng=rng, filters=filters, pauses=pauses
            )
        self._workers[name] = worker
        worker.start()

    async def _report_depth(self) -> None:
        while True:
            for name in list(self._workers):
                try:
                    telemetry.queue_depth(name, await self._queue.depth(name))
                except Exception:
                    log.debug("queue depth of %s unavailable", name, exc_info=True)
            await asyncio.sleep(QUEUE_DEPTH_INTERVAL)


def _targets(targets: Targets) -> dict[str, Target]:
    return {name: Target(*target) for name, target in targets.items()}


def _runs(worker: DestinationWorker, target: Target) -> bool:
    """Whether ``worker`` already runs ``target`` (else it is swapped for a new one)."""
    return (
        target.destination is worker.destination and target.policy == worker.policy and target.filters == worker.filters
    )
