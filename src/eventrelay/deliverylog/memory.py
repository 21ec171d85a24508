"""In-memory delivery log: the fake for unit tests (same contract as the SQLite log)."""

from __future__ import annotations

from collections.abc import Sequence

from eventrelay.deliverylog.base import AttemptRecord, DeliveryRow


class MemoryDeliveryLog:
    def __init__(self) -> None:
        self.records: list[AttemptRecord] = []
        self.rows: dict[tuple[str, str], DeliveryRow] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def record(self, attempts: Sequence[AttemptRecord]) -> None:
        for a in attempts:
            self.records.append(a)
            self.rows[(a.message_id, a.destination)] = DeliveryRow(
                message_id=a.message_id, destination=a.destination, source=a.source, call_type=a.call_type,
                function=a.function, category=a.category, attempts=a.attempt, status=a.status,
                error=a.error_message, received_at=a.received_at, updated_at=a.started_at + a.latency_ms / 1000,
                next_attempt_at=a.next_attempt_at,
            )

    async def deliveries(
        self, *, destination: str | None = None, category: str | None = None, status: str | None = None,
        since: float | None = None, until: float | None = None, limit: int = 100,
    ) -> list[DeliveryRow]:
        rows = [
            r for r in self.rows.values()
            if destination in (None, r.destination) and category in (None, str(r.category))
            and status in (None, r.status) and (since is None or r.updated_at >= since)
            and (until is None or r.updated_at <= until)
        ]
        rows.sort(key=lambda r: r.updated_at, reverse=True)
        return rows[:limit]

    async def attempts(self, message_id: str, destination: str | None = None) -> list[AttemptRecord]:
        return [a for a in self.records if a.message_id == message_id and destination in (None, a.destination)]
