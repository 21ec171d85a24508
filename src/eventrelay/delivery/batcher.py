"""Assembling batches for a ``BatchDestination``: due jobs in, batches out.

Jobs join the open batch of their group (for aws_lambda: the function and the External ID). A
batch is closed, to be sent,

- when it holds ``max_events``, or when the next event would take its payload over
  ``max_bytes`` (that event opens the next batch): a busy destination sends full batches at once;
- ``max_wait`` after its first event (``due``): an idle destination adds at most that latency;
- at once, alone, for an event too large to fit under ``max_bytes`` even alone: the destination
  refuses it (configuration) without sending it.

A job retried as part of a whole batch carries that batch's ``BatchKey`` (``Job.batch``, kept by
the queue): jobs of one key are put together again in a batch of their own, never with others,
closed once all of them are back (or ``max_wait`` after the first), so that a batch that keeps
failing can be split in halves (``delivery/batch_results.py``). A closed batch lists its events
in receipt order. Pure bookkeeping: the clock is the caller's (``now``), nothing is awaited.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from eventrelay.core.records import Job
from eventrelay.destinations.base import BatchLimits, SendRequest


@dataclass(frozen=True, slots=True)
class BatchKey:
    """A batch retried as a whole: its id, how many jobs carry the key, and how many Execution
    Errors the batch has had. Written ``id/size/execution_errors`` in ``Job.batch``."""

    id: str
    size: int
    execution_errors: int

    def __str__(self) -> str:
        return f"{self.id}/{self.size}/{self.execution_errors}"

    @classmethod
    def parse(cls, text: str | None) -> BatchKey | None:
        """The key written in ``text``; None for None or anything not written by ``str``."""
        parts = (text or "").split("/")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        return cls(parts[0], int(parts[1]), int(parts[2]))


@dataclass(slots=True)
class Batch:
    """Jobs of one group to send together, with their requests (same order)."""

    group: str
    key: BatchKey | None  # set when these jobs are a batch retried as a whole
    opened_at: float  # the caller's clock when the first job joined
    jobs: list[Job] = field(default_factory=list)
    requests: list[SendRequest] = field(default_factory=list)
    event_bytes: int = 0  # the bodies' total

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, job: Job, request: SendRequest) -> None:
        self.jobs.append(job)
        self.requests.append(request)
        self.event_bytes += len(request.body)

    def in_receipt_order(self) -> Batch:
        """This batch, its events sorted by receipt (a claim returns them in due order)."""
        times = [job.received_at for job in self.jobs]
        if all(a <= b for a, b in itertools.pairwise(times)):
            return self  # as usual: claimed in receipt order already
        pairs = sorted(zip(self.jobs, self.requests, strict=True), key=lambda pair: pair[0].received_at)
        self.jobs = [job for job, _ in pairs]
        self.requests = [request for _, request in pairs]
        return self


class Batcher:
    """Open batches per group (and per retried batch); ``pending`` counts the jobs they hold."""

    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self.pending = 0
        self._open: dict[tuple[str, str | None], Batch] = {}
        self._handles: set[str] = set()  # jobs waiting here (a lapsed lease may hand one in again)

    def add(self, job: Job, request: SendRequest, group: str, now: float) -> list[Batch]:
        """Put ``job`` in its group's open batch; returns the batches this closed (to send now)."""
        if job.handle in self._handles:
            return []
        limits = self.limits
        size = len(request.body)
        key = BatchKey.parse(job.batch)
        if limits.payload_bytes(1, size) > limits.max_bytes:  # cannot fit even alone
            alone = Batch(group, key, now)
            alone.add(job, request)
            return [alone]
        slot = (group, None if key is None else key.id)
        closed: list[Batch] = []
        batch = self._open.get(slot)
        if batch is not None and limits.payload_bytes(len(batch) + 1, batch.event_bytes + size) > limits.max_bytes:
            closed.append(self._close(slot))
            batch = None
        if batch is None:
            batch = self._open[slot] = Batch(group, key, now)
        batch.add(job, request)
        self.pending += 1
        self._handles.add(job.handle)
        if len(batch) >= limits.max_events or (key is not None and len(batch) >= key.size):
            closed.append(self._close(slot))
        return closed

    def due(self, now: float) -> list[Batch]:
        """Close and return the batches whose ``max_wait`` has passed at ``now``."""
        wait = self.limits.max_wait
        return [self._close(slot) for slot, batch in list(self._open.items()) if batch.opened_at + wait <= now]

    def next_deadline(self) -> float | None:
        """When the oldest open batch is due (None: none open)."""
        if not self._open:
            return None
        return min(batch.opened_at for batch in self._open.values()) + self.limits.max_wait

    def drain(self) -> list[Batch]:
        """Close and return every open batch (stopping)."""
        return [self._close(slot) for slot in list(self._open)]

    def _close(self, slot: tuple[str, str | None]) -> Batch:
        batch = self._open.pop(slot)
        self.pending -= len(batch)
        self._handles.difference_update(job.handle for job in batch.jobs)
        return batch.in_receipt_order()
