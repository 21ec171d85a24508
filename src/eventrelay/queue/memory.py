"""In-memory queue: the fake for unit tests. Same contract as the durable backends, no durability."""

from __future__ import annotations

import itertools
import time
from collections.abc import Collection, Sequence
from dataclasses import replace

from eventrelay.core.errors import QueueFull
from eventrelay.core.records import Accepted, DeadStatus, Job
from eventrelay.queue.base import BlockedLane


class MemoryQueue:
    def __init__(self, *, max_events: int = 1_000_000, dedup_window: float = 86400.0) -> None:
        self.max_events = max_events
        self.dedup_window = dedup_window
        self._ids = itertools.count(1)
        self._jobs: dict[str, tuple[Job, float, float]] = {}  # handle -> (job, due_at, lease_until)
        self._dead: dict[str, tuple[Job, DeadStatus, str]] = {}
        self._seen: dict[str, float] = {}
        self._ordered: frozenset[str] = frozenset()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def append(self, items: Sequence[Accepted]) -> list[bool]:
        now = time.time()
        fresh = [i for i in items if now - self._seen.get(i.message_id, -1e18) > self.dedup_window]
        if len(self._jobs) + sum(len(i.destinations) for i in fresh) > self.max_events:
            raise QueueFull(f"the store holds {len(self._jobs)} jobs; storage.max_events is {self.max_events}")
        result = []
        for item in items:
            if now - self._seen.get(item.message_id, -1e18) <= self.dedup_window:
                result.append(False)
                continue
            self._seen[item.message_id] = now
            for dest in item.destinations:
                handle = str(next(self._ids))
                job = Job(handle, dest, item.message_id, item.source, item.call_type, item.received_at, item.body)
                if dest in self._ordered:
                    job = replace(job, lane=item.lane)
                self._jobs[handle] = (job, now, 0.0)
            result.append(True)
        return result

    async def claim(self, destination: str, limit: int, lease_seconds: float) -> list[Job]:
        now = time.time()
        out: list[Job] = []
        for handle, (job, due, lease) in sorted(self._jobs.items(), key=lambda kv: (kv[1][1], int(kv[0]))):
            if len(out) >= limit:
                break
            if job.destination == destination and due <= now and lease <= now and self._is_head(job):
                self._jobs[handle] = (job, due, now + lease_seconds)
                out.append(job)
        return out

    def _is_head(self, job: Job) -> bool:
        if job.lane is None or job.destination not in self._ordered:
            return True
        return not any(
            j.destination == job.destination and j.lane == job.lane and int(h) < int(job.handle)
            for h, (j, _, _) in self._jobs.items()
        )

    async def order_lanes(self, destinations: Collection[str]) -> None:
        self._ordered = frozenset(destinations)

    def orders(self, destination: str) -> bool:
        return destination in self._ordered

    async def blocked_lanes(self, destination: str, limit: int) -> list[BlockedLane]:
        now = time.time()
        lanes: dict[str, list[tuple[Job, float]]] = {}
        for _handle, (job, due, _lease) in sorted(self._jobs.items(), key=lambda kv: int(kv[0])):
            if job.destination == destination and job.lane is not None:
                lanes.setdefault(job.lane, []).append((job, due))
        out = []
        for lane, jobs in lanes.items():
            head, due = jobs[0]
            if len(jobs) > 1 and (head.attempts or due > now):
                out.append(BlockedLane(lane, len(jobs), head.message_id, head.attempts, due if due > now else None))
        return sorted(out, key=lambda b: -b.events)[:limit]

    async def extend(self, job: Job, lease_seconds: float) -> None:
        if job.handle in self._jobs:
            j, due, _ = self._jobs[job.handle]
            self._jobs[job.handle] = (j, due, time.time() + lease_seconds)

    async def ack(self, job: Job) -> None:
        self._jobs.pop(job.handle, None)

    async def retry(self, job: Job, due_at: float) -> None:
        if job.handle in self._jobs:
            j, _, _ = self._jobs[job.handle]
            first = j.first_attempt_at or time.time()
            retried = replace(j, attempts=j.attempts + 1, first_attempt_at=first, batch=job.batch)
            self._jobs[job.handle] = (retried, due_at, 0.0)

    async def postpone(self, job: Job, due_at: float) -> None:
        if job.handle in self._jobs:
            j, _, _ = self._jobs[job.handle]
            self._jobs[job.handle] = (replace(j, first_attempt_at=j.first_attempt_at or time.time()), due_at, 0.0)

    async def dead_letter(self, job: Job, status: DeadStatus, reason: str) -> None:
        if job.handle in self._jobs:
            j, _, _ = self._jobs.pop(job.handle)
            self._dead[job.handle] = (replace(j, attempts=j.attempts + 1), status, reason)

    async def redrive(self, destination: str, message_ids: Sequence[str] | None = None) -> int:
        wanted = set(message_ids) if message_ids is not None else None
        moved = 0
        now = time.time()
        for handle, (job, _status, _reason) in list(self._dead.items()):
            if job.destination == destination and (wanted is None or job.message_id in wanted):
                del self._dead[handle]
                fresh = replace(job, attempts=0, first_attempt_at=None, redriven_at=now, batch=None)
                self._jobs[handle] = (fresh, now, 0.0)
                moved += 1
        for handle, (job, _due, lease) in list(self._jobs.items()):
            retrying = job.attempts > 0 and lease <= now
            if retrying and job.destination == destination and (wanted is None or job.message_id in wanted):
                self._jobs[handle] = (replace(job, attempts=0, first_attempt_at=None, redriven_at=now), now, 0.0)
                moved += 1
        return moved

    async def depth(self, destination: str | None = None) -> int:
        return sum(1 for j, _, _ in self._jobs.values() if destination in (None, j.destination))
