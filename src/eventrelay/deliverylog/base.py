"""The delivery log interface: what delivery records and what the admin API, CLI and page read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from eventrelay.core.outcome import Category
from eventrelay.core.records import AttemptRecord, DeliveryStatus


@dataclass(slots=True)
class DeliveryRow:
    """One event x destination, as the deliveries API lists it."""

    message_id: str
    destination: str
    source: str
    call_type: str
    function: str | None
    category: Category
    attempts: int
    status: DeliveryStatus
    error: str | None
    received_at: float
    updated_at: float
    next_attempt_at: float | None = None
    delivered_at: float | None = None
    filter: str | None = None  # filtered: the destination filter that matched
    replay: str | None = None  # the replay of the latest attempt (None: live traffic)

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "destination": self.destination,
            "source": self.source,
            "type": self.call_type,
            "function": self.function,
            "category": str(self.category),
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
            "received_at": self.received_at,
            "updated_at": self.updated_at,
            "next_attempt_at": self.next_attempt_at,
            "delivered_at": self.delivered_at,
            "filter": self.filter,
            "replay": self.replay,
        }


@dataclass(slots=True)
class Latency:
    """End-to-end latency (receivedAt to success, retries included) over delivered events of a range."""

    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(slots=True)
class ErrorCount:
    """Failed attempts of one category in a range, and how many distinct events they were."""

    category: Category
    attempts: int
    events: int


@dataclass(slots=True)
class Bucket:
    """One step of the time series: attempts that ended in ``[start, start + width)``."""

    start: float
    delivered: int = 0
    filtered: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # category -> failed attempts


@dataclass(slots=True)
class Stats:
    """Statistics of one destination over ``[since, until]``.

    ``counts`` are events (event x destination) by their state, updated in the range;
    ``errors`` and ``buckets`` count attempts.
    """

    destination: str
    since: float
    until: float
    counts: dict[str, int]
    latency: Latency
    errors: list[ErrorCount]
    buckets: list[Bucket]
    bucket_seconds: float
    first_attempt: Latency = field(default_factory=lambda: Latency(0, None, None, None))
    """The same over the events delivered by their first attempt (no retry, no redrive)."""


@runtime_checkable
class DeliveryLog(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def record(self, attempts: Sequence[AttemptRecord]) -> None:
        """Durably record attempts (and update each event's state) before the queue settles them."""

    async def deliveries(
        self,
        *,
        destination: str | None = None,
        category: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]: ...

    async def attempts(self, message_id: str, destination: str | None = None) -> list[AttemptRecord]: ...

    async def stats(self, destination: str, since: float, until: float) -> Stats:
        """Counts, latency percentiles, errors by category and a time series of one destination."""
        ...

    async def samples(self, destination: str, category: str | None = None, limit: int = 5) -> list[AttemptRecord]:
        """The most recent attempts of ``category`` with their event, newest first; without a
        category, up to ``limit`` of each failure category. ``delivered`` gives recent successful
        deliveries: a store may keep the event of only some of them (the SQLite store: one per
        destination per second) and answers those."""
        ...

    async def replay_counts(self, replay_id: str) -> dict[str, int]:
        """The events of a replay by their state (every status of ``STATUSES``), from the
        latest attempt of each (event, destination) that was the replay's."""
        ...

    async def redriven(self, destination: str, message_ids: Sequence[str] | None, at: float) -> int:
        """Mark failed/discarded/retrying events of ``destination`` (all, or those ids) as retrying
        with their next attempt at ``at``, after a redrive. Returns how many rows changed."""
        ...
