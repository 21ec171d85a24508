"""Flow control of one destination: an adaptive in-flight limit per target (``aimd.py``), and
the jobs claimed for a target that has no room yet.

A destination that names its targets (``TargetedDestination``: ``aws_lambda``'s functions) gets
one limit per function; any other destination one limit for itself. Every limit starts at the
destination's ``delivery.concurrency`` (the ceiling), or at the function's reserved concurrency
once ``reserved_concurrency`` could read it (re-read every ``CAPACITY_REFRESH`` seconds).

    room(now)        jobs the worker may claim: within the ceiling, the targets' room and a prefetch
    admit(job)       a permit to start now, or None: the job waits here (parked) for its target
    release(permit)  the attempt ended: the limit learns from the outcome (throttle, accepted)
    ready(now)       parked jobs whose target has room again, with their permits
    lapsing(now)     parked jobs held long enough that their lease must be extended
    wake_in(now)     seconds until a target's Retry-After ends, while that is what holds work back

Retry-After of a throttle: no attempt to that target starts before it ends (the throttled job's
own retry is due no earlier either: ``decide.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from eventrelay.core import telemetry
from eventrelay.core.outcome import Category, Outcome
from eventrelay.core.records import Job
from eventrelay.delivery.aimd import AimdLimit, Signal
from eventrelay.destinations.base import Destination, SendRequest, TargetedDestination

CAPACITY_REFRESH = 300.0  # seconds between reads of a function's reserved concurrency (it can be changed)
CAPACITY_TIMEOUT = 10.0  # seconds one read may take (STS AssumeRole, then GetFunctionConcurrency)
PREFETCH = 1  # jobs claimed ahead per target, in limits: parked here, started as attempts end

ACCEPTED = frozenset({Category.DELIVERED, Category.EXECUTION_ERROR})  # the function ran

log = logging.getLogger("eventrelay.delivery")


@dataclass(slots=True)
class Permit:
    """One attempt's place in its target's limit."""

    target: str
    limit: AimdLimit
    epoch: int


@dataclass(slots=True)
class Parked:
    job: Job
    request: SendRequest
    since: float  # when it was parked, or its lease last extended


def signal_of(outcome: Outcome | None) -> Signal:
    if outcome is None:
        return Signal.NONE
    if outcome.category is Category.THROTTLED:
        return Signal.THROTTLED
    return Signal.ACCEPTED if outcome.category in ACCEPTED else Signal.NONE


class FlowControl:
    """The limits of destination ``name`` (``destination``), ``ceiling`` attempts in flight at most."""

    def __init__(self, name: str, destination: Destination, ceiling: int, *, clock: Callable[[], float]) -> None:
        self.name = name
        self.ceiling = ceiling
        self._clock = clock
        self._targeted = destination if isinstance(destination, TargetedDestination) else None
        names = self._targeted.targets() if self._targeted is not None else (name,)
        self._limits: dict[str, AimdLimit] = {}
        self._parked: dict[str, deque[Parked]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._started = False
        for target in names:
            self._limit(target)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Ready to take work. The targets' reserved concurrency is read when the first job comes
        (no AWS call for a destination without traffic), then every ``CAPACITY_REFRESH`` seconds."""
        self._started = True

    def _read_soon(self) -> None:
        if self._targeted is not None and self._reader is None and self._started:
            self._reader = asyncio.create_task(self._read_capacity(self._targeted), name=f"eventrelay-flow-{self.name}")

    async def close(self) -> None:
        self._started = False
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    # -- what the worker asks --------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Attempts holding a permit, over all targets."""
        return sum(limit.in_flight for limit in self._limits.values())

    @property
    def parked(self) -> int:
        """Jobs waiting here for their target's room."""
        return sum(len(waiting) for waiting in self._parked.values())

    def target(self, event: Mapping[str, Any]) -> str:
        return self._targeted.target(event) if self._targeted is not None else self.name

    def room(self, now: float) -> int:
        """Jobs that may be claimed now: none beyond the ceiling (attempts in flight and parked
        jobs count); per target, its room plus ``PREFETCH`` x its limit waiting parked, so an
        ended attempt is followed at once, without a claim's round trip (what bounds throughput
        when a throttled function's limit is far below the ceiling); none while it is held back
        by a Retry-After."""
        total = self.ceiling - self.in_flight - self.parked
        if total <= 0:
            return 0
        free = 0
        for target, limit in self._limits.items():
            room = limit.room(now)
            if now < limit.not_before:
                continue
            waiting = self._parked.get(target)
            free += max(0, room + PREFETCH * limit.current - (len(waiting) if waiting else 0))
        return min(total, free)

    def admit(self, job: Job, request: SendRequest, now: float) -> Permit | None:
        """A permit for ``job`` to start now, or None: it waits (in order) until ``ready``."""
        self._read_soon()
        target = self.target(request.event)
        limit = self._limit(target)
        waiting = self._parked.get(target)
        if waiting or limit.room(now) <= 0:
            self._parked.setdefault(target, deque()).append(Parked(job, request, now))
            return None
        return self._permit(target, limit)

    def acquire(self, event: Mapping[str, Any], now: float) -> Permit | None:
        """A permit for one invoke to ``event``'s target now (a batch of it is one invoke), or
        None when the target or the ceiling has no room; nothing is parked."""
        self._read_soon()
        target = self.target(event)
        limit = self._limit(target)
        if self.in_flight >= self.ceiling or limit.room(now) <= 0:
            return None
        return self._permit(target, limit)

    def release(self, permit: Permit, outcome: Outcome | None, now: float) -> None:
        """The attempt of ``permit`` ended (``outcome`` None: cancelled)."""
        retry_after = outcome.retry_after if outcome is not None else None
        before = permit.limit.current
        permit.limit.release(permit.epoch, signal_of(outcome), now, retry_after)
        if permit.limit.current != before:
            telemetry.concurrency_limit(self.name, permit.target, permit.limit.current)

    def ready(self, now: float) -> Iterator[tuple[Job, SendRequest, Permit]]:
        """Parked jobs that may start now, each with its permit, in the order they were parked."""
        for target, waiting in list(self._parked.items()):
            limit = self._limits[target]
            while waiting and limit.room(now) > 0 and self.in_flight < self.ceiling:
                parked = waiting.popleft()
                yield parked.job, parked.request, self._permit(target, limit)
            if not waiting:
                del self._parked[target]

    def lapsing(self, now: float, lease_seconds: float) -> list[Job]:
        """Parked jobs held half their lease: their leases are to be extended (counted from now)."""
        out = []
        for waiting in self._parked.values():
            for parked in waiting:
                if now - parked.since >= lease_seconds / 2:
                    parked.since = now
                    out.append(parked.job)
        return out

    def take_parked(self) -> list[Job]:
        """Every parked job, no longer held here (the worker stops: their leases are released)."""
        jobs = [p.job for waiting in self._parked.values() for p in waiting]
        self._parked.clear()
        return jobs

    def held_back(self, event: Mapping[str, Any], now: float) -> float:
        """Seconds until ``event``'s target takes attempts again (0: now)."""
        return max(0.0, self._limit(self.target(event)).not_before - now)

    def wake_in(self, now: float) -> float | None:
        """Seconds until the first Retry-After (or floor backoff) ends, if any holds a target back."""
        gates = [limit.not_before - now for limit in self._limits.values() if limit.not_before > now]
        return min(gates) if gates else None

    def status(self) -> list[dict[str, Any]]:
        """Per target: the current limit and what bounds it, for the admin API and the page."""
        now = self._clock()
        return [
            {
                "function": target,
                "limit": limit.current,
                "in_flight": limit.in_flight,
                "waiting": len(self._parked.get(target, ())),
                "configured": limit.configured,
                "reserved_concurrency": limit.reserved,
                "retry_after_until": limit.not_before if limit.not_before > now else None,
            }
            for target, limit in self._limits.items()
        ]

    # -- internals -------------------------------------------------------------------------------
    def _limit(self, target: str) -> AimdLimit:
        limit = self._limits.get(target)
        if limit is None:
            limit = self._limits[target] = AimdLimit(self.ceiling)
            telemetry.concurrency_limit(self.name, target, limit.current)
        return limit

    def _permit(self, target: str, limit: AimdLimit) -> Permit:
        return Permit(target, limit, limit.acquire())

    async def _read_capacity(self, destination: TargetedDestination) -> None:
        while True:
            for target in list(self._limits):
                try:
                    reserved = await destination.reserved_concurrency(target, CAPACITY_TIMEOUT)
                except Exception:  # the protocol says never; flow control must not die of it
                    log.exception("destination %s: reading the reserved concurrency of %s failed", self.name, target)
                    continue
                limit = self._limits[target]
                if reserved != limit.reserved:
                    limit.cap(reserved)
                    telemetry.concurrency_limit(self.name, target, limit.current)
                    if reserved is not None:
                        log.info(
                            "destination %s: %s has reserved concurrency %d; attempts in flight at most %d",
                            self.name,
                            target,
                            reserved,
                            limit.ceiling,
                        )
            await asyncio.sleep(CAPACITY_REFRESH)
