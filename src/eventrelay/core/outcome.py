"""The outcome of one delivery attempt, and its category.

Categories are spelled exactly so in the API and the CLI's JSON; ``HUMAN_NAMES`` are the
names the web page shows (those users know from Segment's Event Delivery view).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    DELIVERED = "delivered"
    EXECUTION_ERROR = "execution_error"
    TIMEOUT = "timeout"
    ACCESS_DENIED = "access_denied"
    INVALID_CREDENTIALS = "invalid_credentials"
    THROTTLED = "throttled"
    AWS_ERROR = "aws_error"
    CONFIGURATION = "configuration"
    FILTERED = "filtered"  # a destination filter kept the event from this destination: not sent, not an error


HUMAN_NAMES: dict[Category, str] = {
    Category.DELIVERED: "Delivered",
    Category.EXECUTION_ERROR: "Execution Error",
    Category.TIMEOUT: "Operation timed out",
    Category.ACCESS_DENIED: "AccessDenied",
    Category.INVALID_CREDENTIALS: "Invalid Credentials",
    Category.THROTTLED: "Throttled",
    Category.AWS_ERROR: "AWS Error",
    Category.CONFIGURATION: "Configuration Error",
    Category.FILTERED: "Filtered",
}

# Categories that are not failures: the error table, failure samples and failure counts leave them out.
NOT_FAILURES = frozenset({Category.DELIVERED, Category.FILTERED})


class Verdict(StrEnum):
    """What to do with the job after this attempt."""

    SUCCESS = "success"  # ack
    RETRY = "retry"  # retry at a time from the policy
    DISCARD = "discard"  # dead-letter as discarded (not retried; can be re-driven)
    BACKOFF_DESTINATION = "backoff_destination"  # retry, and pause the whole destination
    FILTERED = "filtered"  # ack without sending: a destination filter matched (never retried)


@dataclass(slots=True)
class Outcome:
    """What one attempt produced. Never carries secrets."""

    category: Category
    verdict: Verdict
    status_code: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    log_tail: str | None = None
    executed_version: str | None = None
    function: str | None = None
    qualifier: str | None = None
    request: dict[str, Any] = field(default_factory=dict)  # "Request to destination", no secrets
    response_body: str | None = None  # "Response from destination" (truncated)
    retry_after: float | None = None  # seconds, when the destination said so
    latency_ms: float = 0.0
    filter: str | None = None  # filtered: the destination filter that matched (``filters[2]: drop if ...``)

    @property
    def ok(self) -> bool:
        return self.category is Category.DELIVERED
