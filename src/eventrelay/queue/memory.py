"""In-memory queue: the fake for unit tests. Same contract as the durable backends, no durability."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import replace

from eventrelay.core.errors import QueueFull
from eventrelay.core.records import Accepted, DeadStatus, Job


class MemoryQueue:
    def __init__(self, *, max_events: int = 1_000_000, dedup_window: float = 86400.0) -> None:
        self.max_events = max_events
        self.dedup_window = dedup_window
        self._ids = itertools.count(1)
        self._jobs: dict[str, tuple[Job, float, float]] = {}  # handle -> (job, due_at, lease_until)
        self._dead: dict[str, tuple[Job, DeadStatus, str]] = {}
        self._seen: dict[str, float] = {}

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
                self._jobs[handle] = (job, now, 0.0)
            result.append(True)
        return result

    async def claim(self, destination: str, limit: int, lease_seconds: float) -> list[Job]:
        now = time.time()
        out: list[Job] = []
        for handle, (job, due, lease) in sorted(self._jobs.items(), key=lambda kv: (kv[1][1], int(kv[0]))):
            if len(out) >= limit:
                break
            if job.destination == destination and due <= now and lease <= now:
                self._jobs[handle] = (job, due, now + lease_seconds)
                out.append(job)
        return out

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
            self._jobs[job.handle] = (replace(j, attempts=j.attempts + 1, first_attempt_at=first), due_at, 0.0)

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
                fresh = replace(job, attempts=0, first_attempt_at=None, redriven_at=now)
                self._jobs[handle] = (fresh, now, 0.0)
                moved += 1
        return moved

    async def depth(self, destination: str | None = None) -> int:
        return sum(1 for j, _, _ in self._jobs.values() if destination in (None, j.destination))
