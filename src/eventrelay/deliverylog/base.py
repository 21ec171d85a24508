"""The delivery log interface: what delivery records and what the admin API, CLI and page read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from eventrelay.delivery.outcome import Category

DeliveryStatus = Literal["delivered", "retrying", "failed", "discarded"]


@dataclass(slots=True)
class AttemptRecord:
    """One attempt of one event to one destination, and the event's state after it."""

    message_id: str
    destination: str
    source: str
    call_type: str
    attempt: int  # 1-based
    status: DeliveryStatus  # the event's state for this destination after this attempt
    category: Category
    started_at: float  # epoch seconds
    latency_ms: float  # this attempt
    received_at: float  # the event's receivedAt (end-to-end latency = finished - received_at)
    function: str | None = None
    qualifier: str | None = None
    invocation_type: str | None = None
    status_code: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    log_tail: str | None = None
    executed_version: str | None = None
    request: dict[str, Any] = field(default_factory=dict)  # no secrets
    response_body: str | None = None
    event: bytes = b""  # "You sent"
    next_attempt_at: float | None = None


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
        }


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
