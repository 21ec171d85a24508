"""The queue interface: what ingest appends and what delivery claims.

An accepted event is appended once with the destinations it routes to. The queue keeps one
unit of work (a ``Job``) per (event, destination) with a due time. Delivery claims due jobs
with a lease (a crash returns them when the lease lapses), then for each job records the
outcome in the delivery log and calls exactly one of ``ack`` (done: delivered or discarded
with no redrive wanted), ``retry`` (try again at a time) or ``dead_letter`` (keep it, failed or
discarded, for redrive).

Both backends implement this; ``tests/contract/test_queue_contract.py`` is the shared suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from eventrelay.core.records import Accepted, DeadStatus, Job

_T = TypeVar("_T")


@runtime_checkable
class Queue(Protocol):
    """Durable event storage with per-destination work items."""

    async def start(self) -> None:
        """Open files/connections. Called once before any other method."""

    async def close(self) -> None:
        """Flush and release everything; jobs claimed and not settled return to the queue."""

    async def append(self, items: Sequence[Accepted]) -> list[bool]:
        """Make ``items`` durable; return for each whether it was new (False: a duplicate
        messageId within the dedup window, not stored again). Returns only once durable.
        Raises ``QueueFull`` over the bound, ``DiskFull`` when the disk refuses, else ``StorageError``."""
        ...

    async def claim(self, destination: str, limit: int, lease_seconds: float) -> list[Job]:
        """Take up to ``limit`` due jobs of ``destination``; hidden from other claimers for
        ``lease_seconds`` (after which an unsettled job is due again)."""
        ...

    async def extend(self, job: Job, lease_seconds: float) -> None:
        """Keep a long attempt's lease alive (JetStream: in-progress ack)."""

    async def ack(self, job: Job) -> None:
        """The job is settled (delivered); remove it."""

    async def retry(self, job: Job, due_at: float) -> None:
        """The attempt failed but may succeed later: due again at ``due_at``; attempts + 1.
        ``job.batch`` is kept with it (None clears it): the next claim returns it."""

    async def postpone(self, job: Job, due_at: float) -> None:
        """The attempt was refused before it ran (throttled): due again at ``due_at``, attempts
        unchanged (it does not use up the attempt cap)."""

    async def dead_letter(self, job: Job, status: DeadStatus, reason: str) -> None:
        """Keep the job out of delivery, for inspection and ``redrive``; never dropped."""

    async def redrive(self, destination: str, message_ids: Sequence[str] | None = None) -> int:
        """Make dead-lettered jobs of ``destination`` (all, or those ids), and jobs waiting for a
        retry (attempted before, not claimed now), due now with a fresh attempt count and a fresh
        retry window: ``attempts`` 0, ``first_attempt_at`` None, ``redriven_at`` now (kept through
        later retries); ``received_at`` unchanged. Jobs never attempted yet and claimed jobs are
        left alone. Returns how many moved."""
        ...

    async def depth(self, destination: str | None = None) -> int:
        """Jobs waiting (due or not, not dead) for ``destination`` or for all."""
        ...


@runtime_checkable
class GroupCommitQueue(Queue, Protocol):
    """A queue that commits many calls together and hands out each call's future without a
    coroutine or task (the SQLite queue: the future of the commit that carries the call). For
    callers that issue many calls in one loop iteration (ingest, the settler)."""

    def append_nowait(self, items: Sequence[Accepted]) -> asyncio.Future[list[bool]]: ...

    def ack_nowait(self, job: Job) -> asyncio.Future[None]: ...

    def retry_nowait(self, job: Job, due_at: float) -> asyncio.Future[None]: ...

    def postpone_nowait(self, job: Job, due_at: float) -> asyncio.Future[None]: ...

    def dead_letter_nowait(self, job: Job, status: DeadStatus, reason: str) -> asyncio.Future[None]: ...


Offers = Mapping[str, tuple[int, float]]
"""destination -> (new jobs to lease at most, lease seconds): room delivery workers reserved."""


@runtime_checkable
class HandoffQueue(Queue, Protocol):
    """A queue that can lease an append's new jobs straight to the delivery workers that
    reserved room, in the append's own commit (``delivery/handoff.py``)."""

    def append_handoff(self, items: Sequence[Accepted], offers: Offers) -> asyncio.Future[tuple[list[bool], list[Job]]]:
        """``append``, with up to ``offers[d][0]`` new jobs of each destination ``d`` leased for
        ``offers[d][1]`` seconds and returned with the fresh flags once durable."""
        ...


@dataclass(frozen=True, slots=True)
class BlockedLane:
    """A user lane whose oldest event is waiting for a retry, holding ``events`` in all (itself
    included): what the admin API and the page show."""

    lane: str
    events: int
    head_message_id: str
    head_attempts: int
    next_attempt_at: float | None  # when the head is due again (None: due now or in flight)


@runtime_checkable
class OrderedQueue(Queue, Protocol):
    """A queue that delivers some destinations' jobs in per-user order (``ordering: user``).

    For a destination in ``order_lanes``, each appended job takes the event's lane
    (``Accepted.lane``), and ``claim`` hands out only the head of each lane: its oldest job not
    yet delivered, failed or discarded (dead-lettered), so a later job of the lane is never
    started before an earlier one has settled, across restarts and processes. A job appended
    before its destination was ordered has no lane and keeps no order. ``redrive`` puts a dead
    job back in its lane by age: it becomes the lane's head again."""

    async def order_lanes(self, destinations: Collection[str]) -> None:
        """Order these destinations' jobs by lane from now on (the others: no longer)."""

    def orders(self, destination: str) -> bool:
        """Whether ``destination``'s jobs are ordered by lane (set by ``order_lanes``)."""
        ...

    async def blocked_lanes(self, destination: str, limit: int) -> list[BlockedLane]:
        """Up to ``limit`` lanes of ``destination`` that hold events behind a head waiting for a
        retry, most events first."""
        ...


class Calls:
    """A queue's append and settle calls as futures, chosen once per queue: a
    ``GroupCommitQueue``'s own non-blocking calls, else one task per call."""

    __slots__ = ("ack", "append", "dead_letter", "postpone", "retry")

    def __init__(self, queue: Queue) -> None:
        self.append: Callable[[Sequence[Accepted]], asyncio.Future[list[bool]]]
        self.ack: Callable[[Job], asyncio.Future[None]]
        self.retry: Callable[[Job, float], asyncio.Future[None]]
        self.postpone: Callable[[Job, float], asyncio.Future[None]]
        self.dead_letter: Callable[[Job, DeadStatus, str], asyncio.Future[None]]
        if isinstance(queue, GroupCommitQueue):
            self.append, self.ack = queue.append_nowait, queue.ack_nowait
            self.retry, self.dead_letter = queue.retry_nowait, queue.dead_letter_nowait
            self.postpone = queue.postpone_nowait
        else:
            self.append = _as_task(queue.append)
            self.ack = _as_task(queue.ack)
            self.retry = _as_task(queue.retry)
            self.postpone = _as_task(queue.postpone)
            self.dead_letter = _as_task(queue.dead_letter)


def _as_task(call: Callable[..., Coroutine[Any, Any, _T]]) -> Callable[..., asyncio.Future[_T]]:
    def start(*args: Any) -> asyncio.Future[_T]:
        return asyncio.ensure_future(call(*args))

    return start
