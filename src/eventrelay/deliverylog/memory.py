"""In-memory delivery log: the fake for unit tests (same contract as the SQLite log)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from eventrelay.core.outcome import NOT_FAILURES, Category
from eventrelay.core.records import AttemptRecord, error_text, finished_at
from eventrelay.deliverylog.base import DeliveryRow, Stats
from eventrelay.deliverylog.samples import DeliveredSamples, keeps_event
from eventrelay.deliverylog.stats import STATUSES, compute_stats


class MemoryDeliveryLog:
    def __init__(self) -> None:
        self.records: list[AttemptRecord] = []
        self.rows: dict[tuple[str, str], DeliveryRow] = {}
        self._samples = DeliveredSamples()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def record(self, attempts: Sequence[AttemptRecord]) -> None:
        for a in attempts:
            delivered = a.category is Category.DELIVERED
            kept = keeps_event(a, self._samples.keep(a))  # as the SQLite store
            self.records.append(a if kept else replace(a, event=b""))
            key = (a.message_id, a.destination)
            before = self.rows.get(key)
            end = finished_at(a)
            self.rows[key] = DeliveryRow(
                message_id=a.message_id,
                destination=a.destination,
                source=a.source,
                call_type=a.call_type,
                function=a.function,
                category=a.category,
                attempts=(before.attempts if before else 0) + 1,
                status=a.status,
                error=error_text(a),
                received_at=a.received_at,
                updated_at=end,
                next_attempt_at=a.next_attempt_at,
                delivered_at=end if delivered else None,
                filter=a.filter,
                replay=a.replay,
            )

    async def deliveries(
        self,
        *,
        destination: str | None = None,
        category: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        rows = [
            r
            for r in self.rows.values()
            if destination in (None, r.destination)
            and category in (None, str(r.category))
            and status in (None, r.status)
            and (since is None or r.updated_at >= since)
            and (until is None or r.updated_at <= until)
        ]
        rows.sort(key=lambda r: r.updated_at, reverse=True)
        return rows[:limit]

    async def attempts(self, message_id: str, destination: str | None = None) -> list[AttemptRecord]:
        found = [a for a in self.records if a.message_id == message_id and destination in (None, a.destination)]
        return sorted(found, key=finished_at)

    async def stats(self, destination: str, since: float, until: float) -> Stats:
        return compute_stats(destination, since, until, self.rows.values(), self.records)

    async def samples(self, destination: str, category: str | None = None, limit: int = 5) -> list[AttemptRecord]:
        failed = [  # delivered ones only when asked for, those that kept their event, as the SQLite store
            a
            for a in self.records
            if a.destination == destination
            and (a.category not in NOT_FAILURES or (category == Category.DELIVERED and a.event))
            and category in (None, str(a.category))
        ]
        failed.sort(key=finished_at, reverse=True)
        out: list[AttemptRecord] = []
        taken: dict[Category, int] = {}
        for a in failed:
            if taken.get(a.category, 0) < limit:
                taken[a.category] = taken.get(a.category, 0) + 1
                out.append(a)
        return out

    async def replay_counts(self, replay_id: str) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.rows.values():
            if row.replay == replay_id:
                counts[row.status] += 1
        return counts

    async def redriven(self, destination: str, message_ids: Sequence[str] | None, at: float) -> int:
        wanted = set(message_ids) if message_ids is not None else None
        changed = 0
        for key, row in self.rows.items():
            if (
                row.destination == destination
                and row.status in ("failed", "discarded", "retrying")
                and (wanted is None or row.message_id in wanted)
            ):
                self.rows[key] = replace(row, status="retrying", updated_at=at, next_attempt_at=at)
                changed += 1
        return changed
