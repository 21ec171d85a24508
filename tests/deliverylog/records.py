"""Build delivery-log records the way the delivery engine does, for tests of the log, API, CLI and page."""

from __future__ import annotations

import time
from typing import Any

import orjson

from eventrelay.core.outcome import Category
from eventrelay.core.records import AttemptRecord, DeliveryStatus

# A whole second a day ago: recent enough for the 7-day retention, fixed for the whole run.
BASE_TIME = float(int(time.time()) - 86400)

ERRORS: dict[Category, tuple[int | None, str | None, str | None]] = {
    Category.DELIVERED: (200, None, None),
    Category.EXECUTION_ERROR: (200, "Exception", "boom from handler"),
    Category.TIMEOUT: (None, "Timeout", "no answer within 5 s"),
    Category.ACCESS_DENIED: (403, "AccessDenied", "not authorized to perform sts:AssumeRole"),
    Category.INVALID_CREDENTIALS: (403, "InvalidClientTokenId", "The security token is invalid"),
    Category.THROTTLED: (429, "TooManyRequestsException", "Rate exceeded"),
    Category.AWS_ERROR: (503, "ServiceException", "service unavailable"),
    Category.CONFIGURATION: (404, "ResourceNotFoundException", "Function not found"),
    Category.FILTERED: (None, None, None),
}


_STATUS: dict[Category, DeliveryStatus] = {Category.DELIVERED: "delivered", Category.FILTERED: "filtered"}


def attempt(
    message_id: str,
    category: Category = Category.DELIVERED,
    *,
    destination: str = "lambda-prod",
    status: DeliveryStatus | None = None,
    n: int = 1,
    at: float = BASE_TIME,
    received_at: float | None = None,
    latency_ms: float = 10.0,
    log_tail: str | None = None,
    event: dict[str, Any] | None = None,
    filter: str | None = None,
    replay: str | None = None,
) -> AttemptRecord:
    """One attempt that started at ``at``; status defaults to delivered/retrying by category."""
    code, err_type, err_msg = ERRORS[category]
    body = (
        event
        if event is not None
        else {
            "type": "track",
            "event": "Order Completed",
            "userId": "u1",
            "messageId": message_id,
            "properties": {"total": 42},
        }
    )
    return AttemptRecord(
        message_id=message_id,
        destination=destination,
        source="web",
        call_type="track",
        attempt=n,
        status=status or _STATUS.get(category, "retrying"),
        category=category,
        started_at=at,
        latency_ms=latency_ms,
        received_at=received_at if received_at is not None else at - 0.5,
        function="my-fn",
        qualifier="live",
        invocation_type="RequestResponse",
        status_code=code,
        error_type=err_type,
        error_message=err_msg,
        log_tail=log_tail,
        executed_version="3" if code == 200 else None,
        request={
            "function": "my-fn",
            "qualifier": "live",
            "invocation_type": "RequestResponse",
            "client_context": {"custom": {"app": "shop"}},
        },
        response_body=orjson.dumps({"errorMessage": err_msg}).decode() if err_msg else None,
        event=orjson.dumps(body),
        filter=filter,
        replay=replay,
        next_attempt_at=None if category is Category.DELIVERED else at + 2,
    )
