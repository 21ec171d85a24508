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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

DeadStatus = Literal["failed", "discarded"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """One validated, normalised event ready to be made durable."""

    message_id: str
    source: str
    call_type: str
    received_at: float  # epoch seconds, server time
    body: bytes  # the normalised Segment event as JSON
    destinations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    """One event due for one destination, as claimed by a delivery worker.

    ``handle`` is backend-specific (a row id, a JetStream reply subject); ``attempts`` counts
    attempts already made before this claim (since the last redrive, if any).

    ``redriven_at``: when an operator last re-drove the job out of the dead letters (None:
    never). The retry window runs from it, as the attempt count does, so a re-driven event
    gets a fresh window; ``received_at`` stays the event's receipt (the delivery log's
    receivedAt, end-to-end latency).
    """

    handle: str
    destination: str
    message_id: str
    source: str
    call_type: str
    received_at: float
    body: bytes
    attempts: int = 0
    first_attempt_at: float | None = None
    meta: dict[str, str] = field(default_factory=dict, compare=False)
    redriven_at: float | None = None  # last, after ``meta``: positional construction is unchanged


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
        """The attempt failed but may succeed later: due again at ``due_at``; attempts + 1."""

    async def dead_letter(self, job: Job, status: DeadStatus, reason: str) -> None:
        """Keep the job out of delivery, for inspection and ``redrive``; never dropped."""

    async def redrive(self, destination: str, message_ids: Sequence[str] | None = None) -> int:
        """Make dead-lettered jobs of ``destination`` (all, or those ids) due now with a
        fresh attempt count and a fresh retry window: ``attempts`` 0, ``first_attempt_at``
        None, ``redriven_at`` now (kept through later retries); ``received_at`` unchanged.
        Returns how many."""
        ...

    async def depth(self, destination: str | None = None) -> int:
        """Jobs waiting (due or not, not dead) for ``destination`` or for all."""
        ...


def call_nowait(queue: Queue, name: str, *args: Any) -> asyncio.Future[Any]:
    """``queue.<name>(*args)`` as a future, without a coroutine or task where the backend offers
    ``<name>_nowait`` (the SQLite queue hands out its commit's future); other backends get one
    task per call. For callers that issue many calls in one loop iteration (ingest, the settler)."""
    nowait = getattr(queue, f"{name}_nowait", None)
    if nowait is not None:
        future: asyncio.Future[Any] = nowait(*args)
        return future
    pending: asyncio.Future[Any] = asyncio.ensure_future(getattr(queue, name)(*args))
    return pending
