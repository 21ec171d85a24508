"""One destination's delivery loop: claim due jobs up to its concurrency, send, decide, settle.

Each destination has its own worker (its own task, concurrency limit and destination-wide
backoff), so a slow or failing destination never slows another.

    loop: paused? sleep until the pause ends
          free slots? claim up to that many due jobs (lease = timeout + margin), start one task each
          nothing due? wait for notify() or an idle timeout that grows 10 ms -> 500 ms
    claimed: parse the body and apply the destination's filters (delivery/filtering.py: a
          filtered event is not sent, nor waits for room), then wait for room in flow control
    task: send (the destination bounds the attempt by the timeout, measures it and classifies
          it: destinations/base.py), decide, hand the settlement to the settler
          (which records it, batched, then makes the queue call), freeing the slot at once

Free slots come from flow control (``flow.py``): an adaptive limit per function (AIMD on
throttles, Retry-After honoured) within ``delivery.concurrency``. A claimed job whose function
has no room waits in flow control (in order, its lease kept) until it has.

An attempt cancelled by shutdown is neither recorded nor settled: its lease returns it.
A destination configured to batch gets a ``BatchWorker`` (``batch_worker.py``), this loop with
batches in its slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from eventrelay.config.model import DeliveryPolicy
from eventrelay.core import telemetry
from eventrelay.core.errors import StorageDamaged
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.core.records import Job, finished_at
from eventrelay.delivery.decide import Settlement, decide
from eventrelay.delivery.filtering import NO_FILTERS, screen
from eventrelay.delivery.flow import FlowControl, Permit
from eventrelay.delivery.pauses import NO_SHARING, PauseBoard
from eventrelay.delivery.settler import Settler
from eventrelay.destinations.base import Destination, SendRequest
from eventrelay.filters.rules import Filters
from eventrelay.queue.base import OrderedQueue, Queue

CLAIM_BATCH_MAX = 256  # jobs per claim: one storage round trip feeds many attempts
LEASE_MARGIN = 30.0  # seconds beyond the attempt timeout: covers settle batching and a loaded loop
IDLE_MIN = 0.01  # first idle poll; notify() wakes the worker sooner
IDLE_MAX = 0.5  # idle polls back off to this, so retries due "now" start within half a second
DRAIN_GRACE = 2.0  # seconds drain waits beyond the attempt timeout (destinations answer within it)
STORAGE_RETRY_DELAY = 1.0  # after a failed claim, before trying again
UNSETTLED_MAX = 4_096  # attempts done but not yet recorded and settled (a few KB each): bounds memory
# when storage is slower than the destination; their leases keep them from being claimed again
# Jobs one append may hand to this worker directly (delivery/handoff.py): a batch of 100 events
# takes up to this many slots at once and leaves the rest to claims, so one large request does
# not take every slot while smaller ones wait for a claim.
HANDOFF_MAX = 64
PAUSE_MIN = 5.0  # destination-wide backoff (AccessDenied, Invalid Credentials): first pause
PAUSE_MAX = 300.0  # ... doubling up to 5 minutes, reset by the next success

log = logging.getLogger("eventrelay.delivery")

T = TypeVar("T")


class DestinationWorker:
    def __init__(
        self,
        name: str,
        destination: Destination,
        policy: DeliveryPolicy,
        queue: Queue,
        settler: Settler,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        pauses: PauseBoard = NO_SHARING,
        filters: Filters = NO_FILTERS,
    ) -> None:
        self.name = name
        self._pauses = pauses  # the deployment's destination-wide pauses (delivery/pauses.py)
        self.destination = destination
        self.policy = policy
        self.filters = filters
        self._queue = queue
        self._settler = settler
        self._clock = clock
        self._rng = rng
        self._inflight: set[asyncio.Task[None]] = set()
        self._unsettled = 0  # attempts handed to the settler, not yet settled (<= UNSETTLED_MAX)
        self._reserved = 0  # slots promised to appends in progress (delivery/handoff.py)
        self.lease_seconds = policy.timeout + LEASE_MARGIN
        self._claim_max = CLAIM_BATCH_MAX  # jobs per claim at most
        self._all_settled: asyncio.Future[None] | None = None  # drain waits for _unsettled == 0
        self._kick = asyncio.Event()
        self._stopped = asyncio.Event()
        self._waiting_for_slot = False
        self._loop_task: asyncio.Task[None] | None = None
        self._pause_level = 0
        self.paused_until = 0.0
        self._meter = telemetry.DestinationMeter(name)
        self._flow = FlowControl(name, destination, policy.concurrency, clock=clock)
        # ordering: user: only a claim knows a lane's head, so no job is handed over at append
        self._ordered = isinstance(queue, OrderedQueue) and queue.orders(name)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._flow.start()
        self._loop_task = asyncio.create_task(self._run(), name=f"eventrelay-deliver-{self.name}")

    def notify(self) -> None:
        """New work may be due: claim now instead of at the next idle poll."""
        self._kick.set()

    def stop_claiming(self) -> None:
        self._stopped.set()
        self._kick.set()

    async def drain(self, wait_seconds: float | None = None) -> None:
        """Stop claiming; let in-flight attempts finish (up to ``wait_seconds``, default the attempt
        timeout plus a grace) and settle; cancel the rest (their leases return them)."""
        self.stop_claiming()
        if self._loop_task is not None:
            await self._loop_task
        for job in self._flow.take_parked():  # claimed, never started: due again for whoever claims
            self._release(job)
        await self._flow.close()
        wait = self.policy.timeout + DRAIN_GRACE if wait_seconds is None else wait_seconds
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=wait)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._unsettled:  # finished attempts are recorded and settled before drain returns
            self._all_settled = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._all_settled

    def reserve(self, wanted: int) -> int:
        """Promise free slots (up to ``wanted``, the append's jobs for this destination, and
        ``HANDOFF_MAX``) to an append in progress: the jobs it leases to this worker arrive
        through ``take``. 0 when stopped, paused or full. Never more than the append can use:
        slots promised to appends in the writer's queue are slots the claim loop cannot fill
        (reserving ``HANDOFF_MAX`` for a single event left a busy worker claiming nothing)."""
        if self._stopped.is_set() or self.paused or self._ordered:
            return 0
        count = min(self._free() - self._reserved, HANDOFF_MAX, wanted)
        if count <= 0:
            return 0
        self._reserved += count
        return count

    def take(self, jobs: list[Job], *, reserved: int) -> None:
        """Start ``jobs`` handed over by an append (already leased to this worker) and give back
        the rest of the ``reserved`` slots. A stopped worker releases their leases instead."""
        self._reserved -= reserved
        if self._stopped.is_set():  # replaced or stopping: release them for whoever claims next
            for job in jobs:
                self._release(job)
            return
        for job in jobs:
            self._launch(job)
        if self._waiting_for_slot and len(jobs) < reserved:  # room was given back
            self._waiting_for_slot = False
            self._kick.set()

    def _release(self, job: Job) -> None:
        """End ``job``'s lease now (it is due again), without waiting; a failure only means the
        lease lapses on its own."""
        released = asyncio.ensure_future(self._queue.extend(job, 0.0))
        released.add_done_callback(_log_release_failure)

    def _free(self) -> int:
        return min(self._flow.room(self._clock()), UNSETTLED_MAX - self._unsettled)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def paused(self) -> bool:
        return self.paused_until > self._clock()

    def flow_status(self) -> list[dict[str, object]]:
        """Per function: the adaptive in-flight limit (``flow.FlowControl.status``)."""
        return self._flow.status()

    # -- the claim loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        idle = IDLE_MIN
        lease = self.lease_seconds
        while not self._stopped.is_set():
            self.paused_until = max(self.paused_until, self._pauses.until(self.name))
            pause = self.paused_until - self._clock()
            if pause > 0:
                await self._sleep(pause)
                continue
            self._tend_parked()
            # concurrency bounds attempts in flight; settling ones (recorded, then acked, in
            # batches: a commit or two) no longer hold a slot, up to UNSETTLED_MAX of them
            free = self._free() - self._reserved
            if free <= 0:
                self._kick.clear()  # wait for a slot; a notify meanwhile is served by the next claim
                self._waiting_for_slot = True
                await self._wait_kick(self._flow_wake())
                continue
            limit = min(free, self._claim_max)
            self._kick.clear()
            try:
                jobs = await self._queue.claim(self.name, limit, lease)
            except StorageDamaged as exc:  # logged once where it was found (storage/integrity.py)
                log.debug("destination %s: cannot claim from a damaged queue: %s", self.name, exc)
                await self._sleep(STORAGE_RETRY_DELAY)
                continue
            except Exception:
                log.exception("destination %s: claiming due jobs failed; trying again", self.name)
                await self._sleep(STORAGE_RETRY_DELAY)
                continue
            for job in jobs:
                self._launch(job)
            if len(jobs) >= limit:
                idle = IDLE_MIN
                continue
            await self._wait_kick(IDLE_MIN if jobs else idle)
            idle = IDLE_MIN if jobs else min(idle * 2, IDLE_MAX)

    def _flow_wake(self) -> float | None:
        """How long a worker without room may wait for a kick: until a Retry-After ends, or (with
        jobs parked in flow control) at most ``IDLE_MAX``, to keep their leases."""
        wake = self._flow.wake_in(self._clock())
        if self._flow.parked:
            wake = IDLE_MAX if wake is None else min(wake, IDLE_MAX)
        return wake

    def _tend_parked(self) -> None:
        """Start parked jobs that have room now; extend the leases of those parked long."""
        now = self._clock()
        for job, request, permit in self._flow.ready(now):
            self._start(job, request, permit)
        for job in self._flow.lapsing(now, self.lease_seconds):
            extended = asyncio.ensure_future(self._queue.extend(job, self.lease_seconds))
            extended.add_done_callback(_log_release_failure)

    async def _wait_kick(self, seconds: float | None) -> None:
        if self._kick.is_set():
            await asyncio.sleep(0)  # Event.wait() would not yield: let other tasks run first
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._kick.wait()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early only to stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopped.wait()

    def _launch(self, job: Job) -> None:
        """Start ``job`` now if its function has room, else leave it waiting in flow control."""
        request = screen(self.filters, job)
        if isinstance(request, Outcome):  # nothing to send: the attempt only records why
            self._start(job, request, None)
            return
        permit = self._flow.admit(job, request, self._clock())
        if permit is not None:
            self._start(job, request, permit)

    def _start(self, job: Job, request: SendRequest | Outcome, permit: Permit | None) -> None:
        self._spawn(self._attempt(job, request, permit))

    def _spawn(self, attempt: Coroutine[Any, Any, None]) -> None:
        """Run ``attempt`` (of one event or a batch) as a task in flight."""
        task = asyncio.create_task(attempt)
        self._inflight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("destination %s: attempt task failed", self.name, exc_info=exc)
        if self._flow.parked and not self._stopped.is_set():
            self._tend_parked()
        if self._waiting_for_slot:
            self._waiting_for_slot = False
            self._kick.set()

    # -- one attempt ---------------------------------------------------------------------------
    async def _attempt(self, job: Job, request: SendRequest | Outcome, permit: Permit | None) -> None:
        started = self._clock()
        outcome = await self._invoked(permit, self._send(request))
        now, not_before = self._ended(permit, outcome)
        if outcome.verdict is not Verdict.FILTERED:  # a filtered event made no attempt
            self._meter.attempt(str(outcome.category), outcome.latency_ms / 1000.0)
        settlement = decide(
            job, outcome, self.policy, started_at=started, now=now, not_before=not_before, rng=self._rng
        )
        self._submit([settlement])

    async def _invoked(self, permit: Permit | None, send: Awaitable[T]) -> T:
        """The answer of ``send`` (one invoke); cancelled, its permit is given back, nothing learnt."""
        try:
            return await send
        except BaseException:
            if permit is not None:
                self._flow.release(permit, None, self._clock())
            raise

    def _ended(self, permit: Permit | None, invoke: Outcome) -> tuple[float, float | None]:
        """An invoke ended with ``invoke``: its function's limit learns from it and the destination
        is paced (``_pace``). Returns now and the end of a pause in force (no retry due before)."""
        now = self._clock()
        if permit is not None:
            self._flow.release(permit, invoke, now)
        return now, self._pace(invoke, now)

    def _submit(self, settlements: list[Settlement]) -> None:
        """The settler records (batched), then settles; the attempt's slot is free from now."""
        self._unsettled += len(settlements)
        for settlement in settlements:
            self._settler.submit(settlement, self._settled)

    def _settled(self, settlement: Settlement, ok: bool) -> None:
        self._unsettled -= 1
        if not self._unsettled and self._all_settled is not None and not self._all_settled.done():
            self._all_settled.set_result(None)
        if ok:
            record = settlement.record
            if settlement.action == "ack":
                self._meter.delivered(finished_at(record) - record.received_at)
            elif settlement.action == "filter":
                self._meter.filtered()
            elif settlement.action in ("retry", "postpone"):
                self._meter.retried()
            else:
                self._meter.failed(str(record.category))
        else:
            log.warning(
                "destination %s: attempt of %s not settled; it returns to the queue after its lease",
                self.name,
                settlement.job.message_id,
            )
        if self._waiting_for_slot:
            self._waiting_for_slot = False
            self._kick.set()
        elif ok and settlement.job.lane is not None and settlement.action in ("ack", "filter", "dead_letter"):
            self._kick.set()  # a user lane's head left: its next event is due now (ordering: user)

    async def _send(self, request: SendRequest | Outcome) -> Outcome:
        if isinstance(request, Outcome):  # screened out before the send
            return request
        try:
            return await self.destination.send(request, self.policy.timeout)
        except Exception as exc:  # the contract says never; if one does, retry rather than lose the event
            # (tests/delivery/test_engine.py: test_a_destination_that_raises_is_retried_not_lost)
            log.exception("destination %s: send raised instead of returning an outcome", self.name)
            return raised(exc)

    def _pace(self, outcome: Outcome, now: float) -> float | None:
        """Destination-wide pacing after an attempt (one invoke, of one event or a batch): pause
        on AccessDenied / Invalid Credentials, reset on success. Returns the end of a pause in
        force (no retry is due before it), else None."""
        if outcome.verdict is Verdict.BACKOFF_DESTINATION:
            self._pause(now, outcome)
        elif outcome.verdict is Verdict.SUCCESS:
            self._pause_level = 0
        return self.paused_until if self.paused_until > now else None

    def _pause(self, now: float, outcome: Outcome) -> None:
        if self.paused_until > now:
            return  # already paused: several in-flight attempts failing together escalate once
        delay = min(PAUSE_MAX, PAUSE_MIN * 2**self._pause_level)
        self._pause_level += 1
        self.paused_until = now + delay
        self._pauses.publish(self.name, self.paused_until)
        log.warning(
            "destination %s paused for %.0fs after %s: %s",
            self.name,
            delay,
            outcome.category,
            outcome.error_message or outcome.error_type or "",
        )


def raised(exc: Exception) -> Outcome:
    """The outcome of a send that raised instead of returning one: retried, not lost."""
    return Outcome(Category.AWS_ERROR, Verdict.RETRY, error_type=type(exc).__name__, error_message=str(exc)[:500])


def _log_release_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("could not release a handed-over job (its lease will lapse): %s", exc)
