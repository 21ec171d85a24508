"""The delivery worker of a destination configured to batch: a ``DestinationWorker`` whose slots
hold batch invokes instead of single events (for a ``BatchDestination``).

The claim loop, hand-off, leases, the destination-wide pause, drain and settling are the
``DestinationWorker``'s; what differs:

    claims       up to max_events jobs per free slot, less the jobs already waiting here (so one
                 storage round trip feeds many batches; jobs are claimed and settled in bulk)
    a due job    joins its group's open batch (``batcher.py``); the batches it closes leave now
    max_wait     a timer sends a batch ``max_wait`` after its first event
    a slot       one batch invoke in flight, with a permit of its function's adaptive limit
                 (``flow.py``: one invoke, one concurrent execution); a closed batch waits for
                 one, in order, while batches of functions with room go
    an attempt   ``send_batch``, then one settlement per event (``batch_results.py``), recorded
                 and settled as a single event's are
    stopping     jobs still waiting to be sent are released at once (due again, for whoever claims)
    lease        the attempt timeout + ``max_wait`` + the margin
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from typing import Any

from eventrelay.core.outcome import Outcome
from eventrelay.core.records import Job
from eventrelay.delivery.batch_results import batch_id_of, settle_batch
from eventrelay.delivery.batcher import Batch, Batcher
from eventrelay.delivery.decide import Settlement
from eventrelay.delivery.filtering import screen
from eventrelay.delivery.flow import Permit
from eventrelay.delivery.worker import UNSETTLED_MAX, DestinationWorker, raised
from eventrelay.destinations.base import BatchDestination, BatchOutcome

log = logging.getLogger("eventrelay.delivery")

# Jobs per claim at most: one storage round trip feeds many batches (20 of 100), so slots that free
# up together refill in one claim, not twenty; well under the SQLite queue's 4,000 rows per commit.
BATCH_CLAIM_MAX = 2_000


class BatchWorker(DestinationWorker):
    """One batching destination's delivery loop (see the module doc)."""

    def __init__(self, name: str, destination: BatchDestination, *args: Any, **options: Any) -> None:
        """As ``DestinationWorker`` (policy, queue, settler, clock, rng), for a ``BatchDestination``."""
        super().__init__(name, destination, *args, **options)
        self.batching = destination
        self.limits = destination.batch
        self.lease_seconds += self.limits.max_wait  # a job may wait that long before its attempt starts
        self._claim_max = max(self._claim_max, BATCH_CLAIM_MAX)
        self._batcher = Batcher(self.limits)
        self._ready: deque[Batch] = deque()  # closed, waiting for a slot
        self._ready_jobs = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        """Jobs claimed and not yet sent (open batches and closed ones waiting for a slot)."""
        return self._batcher.pending + self._ready_jobs

    # -- DestinationWorker hooks ----------------------------------------------------------------
    def _free(self) -> int:
        """Jobs the next claim (or hand-off) may take: ``max_events`` per free slot, less those
        waiting here."""
        return self._slots() * self.limits.max_events - self.waiting

    def _launch(self, job: Job) -> None:
        if self._stopped.is_set():  # claimed while stopping: due again for whoever claims next
            self._release(job)
            return
        request = screen(self.filters, job)
        if isinstance(request, Outcome):  # nothing to send: a single attempt records why
            self._start(job, request, None)
            return
        now = asyncio.get_running_loop().time()
        for batch in self._batcher.add(job, request, self.batching.batch_group(request), now):
            self._dispatch(batch)
        self._arm()

    def _done(self, task: asyncio.Task[None]) -> None:
        super()._done(task)
        self._pump()

    def _settled(self, settlement: Settlement, ok: bool) -> None:
        super()._settled(settlement, ok)
        self._pump()

    def stop_claiming(self) -> None:
        super().stop_claiming()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        unsent = [*self._batcher.drain(), *self._ready]
        self._ready.clear()
        self._ready_jobs = 0
        for batch in unsent:
            for job in batch.jobs:
                self._release(job)

    # -- batches ---------------------------------------------------------------------------------
    def _slots(self) -> int:
        """Free slots for batch invokes (the single-event worker's free attempts)."""
        return super()._free()

    def _dispatch(self, batch: Batch) -> None:
        if self._ready or not self._start_batch(batch):  # earlier closed batches go first
            self._ready.append(batch)
            self._ready_jobs += len(batch)

    def _pump(self) -> None:
        """Start closed batches, in order, whose function has room (the others wait)."""
        for batch in list(self._ready):
            if self._start_batch(batch):
                self._ready.remove(batch)
                self._ready_jobs -= len(batch)

    def _tend_parked(self) -> None:
        super()._tend_parked()
        now = self._clock()
        for batch in list(self._ready):  # held back longer than their leases allow: back to the queue
            if self._flow.held_back(batch.requests[0].event, now) > self.lease_seconds / 2:
                self._ready.remove(batch)
                self._ready_jobs -= len(batch)
                for job in batch.jobs:
                    self._release(job)
        self._pump()  # a Retry-After ended, or room appeared: batches waiting for it go

    def _start_batch(self, batch: Batch) -> bool:
        """Start ``batch`` if its function has room now; False: it must wait."""
        if self._unsettled >= UNSETTLED_MAX:
            return False
        permit = self._flow.acquire(batch.requests[0].event, self._clock())
        if permit is None:
            return False
        self._spawn(self._attempt_batch(batch, permit))
        return True

    def _arm(self) -> None:
        """A timer for the oldest open batch's ``max_wait``. One armed timer is never late: batches
        open in time order with the same wait, so none opened since is due before it (when it
        fires it sends what is due and arms for the next)."""
        if self._timer is not None:
            return
        deadline = self._batcher.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        for batch in self._batcher.due(asyncio.get_running_loop().time()):
            self._dispatch(batch)
        self._arm()
        self.notify()  # the batcher has room again: claim what is due

    async def _attempt_batch(self, batch: Batch, permit: Permit) -> None:
        started = self._clock()
        result = await self._invoked(permit, self._send_batch(batch))
        now, not_before = self._ended(permit, result.invoke)
        settlements = settle_batch(
            batch,
            result,
            self.policy,
            batch_id=batch_id_of(batch),
            started_at=started,
            now=now,
            not_before=not_before,
            rng=self._rng,
        )
        self._meter.batch(len(batch), result.payload_bytes)
        self._meter.attempts(Counter(str(s.record.category) for s in settlements), result.invoke.latency_ms / 1000.0)
        self._submit(settlements)

    async def _send_batch(self, batch: Batch) -> BatchOutcome:
        try:
            return await self.batching.send_batch(batch.requests, self.policy.timeout)
        except Exception as exc:  # the contract says never; if one does, retry rather than lose events
            log.exception("destination %s: send_batch raised instead of returning an outcome", self.name)
            failed = raised(exc)
            return BatchOutcome(failed, [failed] * len(batch), 0)
