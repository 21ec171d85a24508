"""The records that travel the data flow: an accepted event, a job, an attempt.

Accepted       ingest -> queue: one validated, normalised event and the destinations it routes to
Job            queue -> delivery: one event due for one destination, as claimed
AttemptRecord  delivery -> delivery log: one attempt's outcome and the event's state after it
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from eventrelay.core.outcome import NOT_FAILURES, Category

DeadStatus = Literal["failed", "discarded"]


DeliveryStatus = Literal["delivered", "retrying", "failed", "discarded", "filtered"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """One validated, normalised event ready to be made durable."""

    message_id: str
    source: str
    call_type: str
    received_at: float  # epoch seconds, server time
    body: bytes  # the normalised Segment event as JSON
    destinations: tuple[str, ...] = ()
    lane: str | None = None  # the user it belongs to (``spec.ordering_key``): per-user ordering


@dataclass(frozen=True, slots=True)
class Job:
    """One event due for one destination, as claimed by a delivery worker.

    ``handle`` is backend-specific (a row id, a JetStream reply subject); ``attempts`` counts
    attempts already made before this claim (since the last redrive, if any).

    ``lane``: the user lane of a destination with ``ordering: user`` (None otherwise): the queue
    hands out only the oldest waiting job of a lane, so settling this one lets the next go.

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
    redriven_at: float | None = None  # after ``meta``: positional construction is unchanged
    # The whole batch this job is retried with (``delivery/batcher.BatchKey``, written by the
    # queue's ``retry`` and read back by its claim): jobs of one key are sent together again, so
    # a failing batch can be split in halves. None: the job batches with whatever is due.
    batch: str | None = None
    lane: str | None = None  # set when the destination orders by user: the job's user lane
    replay: str | None = None  # the replay that made this job (None: live traffic); see delivery/replay.py


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
    # The batch the event travelled in (a destination with ``batch`` set; None: one event per
    # invoke): its id (the same id when a whole batch is tried again), events and payload bytes.
    batch_id: str | None = None
    batch_size: int | None = None
    batch_bytes: int | None = None
    warning: str | None = None  # e.g. an unknown batchItemFailures itemIdentifier, ignored
    filter: str | None = None  # filtered: the destination filter that matched (``filters[2]: drop if ...``)
    replay: str | None = None  # the replay this attempt belongs to (None: live traffic)


def finished_at(a: AttemptRecord) -> float:
    """When the attempt ended (epoch seconds)."""
    return a.started_at + a.latency_ms / 1000.0


def error_text(a: AttemptRecord) -> str | None:
    """The one-line error a delivery row shows: ``ErrorType: message`` (None when delivered or filtered)."""
    if a.category in NOT_FAILURES:
        return None
    parts = [p for p in (a.error_type, a.error_message) if p]
    return ": ".join(parts) if parts else str(a.category)
