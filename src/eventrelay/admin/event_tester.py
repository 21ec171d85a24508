"""The Event Tester: build a test event of any call type, normalise it exactly as the Tracking API
does, send it straight through one destination instance (no queue, no retry, nothing recorded in the
delivery log) and answer "You sent", "Request to destination" and "Response from destination".

Shared by ``eventrelay send`` and ``POST /api/v1/destinations/{name}/send`` (``admin/tester_api.py``).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.core.outcome import HUMAN_NAMES, Outcome
from eventrelay.destinations.base import BatchDestination, Destination, SendRequest
from eventrelay.ingest.normalise import iso, normalise
from eventrelay.ingest.validate import validate

SEND_TIMEOUT = 30.0  # seconds: a person waits for the answer; longer than the 5 s delivery default
LIBRARY = {"name": "eventrelay-send", "version": "1"}
TEST_USER = "eventrelay-test-user"
TEST_EVENT = "Test Event"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What to send: the call type, the event (or page/screen) name, userId and properties."""

    call_type: str = "track"
    name: str = TEST_EVENT
    user_id: str = TEST_USER
    properties: dict[str, Any] = field(default_factory=dict)


def build_event(spec: EventSpec) -> dict[str, Any]:
    """A test event, validated (``PayloadError`` naming the field) and normalised as the Tracking API does."""
    event: dict[str, Any] = {"userId": spec.user_id, "context": {"library": dict(LIBRARY)}}
    if spec.call_type == "track":
        event |= {"event": spec.name, "properties": spec.properties}
    elif spec.call_type in ("page", "screen"):
        event |= {"name": spec.name, "properties": spec.properties}
    elif spec.call_type == "identify":
        event["traits"] = spec.properties
    elif spec.call_type == "group":
        event |= {"groupId": "eventrelay-test-group", "traits": spec.properties}
    else:
        event["previousId"] = f"{spec.user_id}-previous"
    event["messageId"] = f"eventrelay-send-{uuid.uuid4()}"
    validate(event, spec.call_type)
    received_at = time.time()
    return normalise(
        event, spec.call_type, received_at=received_at, received_iso=iso(received_at), ip=None, channel="server"
    )


async def send_test_event(
    instance: Destination,
    dest: DestinationConfig,
    event: dict[str, Any],
    *,
    source: str | None,
    timeout: float = SEND_TIMEOUT,  # noqa: ASYNC109 (a plain number the destination applies)
) -> dict[str, Any]:
    """Send ``event`` through ``instance``: ``{"sent", "message", "you_sent", "request", "response"}``.
    ``sent`` is false (and ``message`` says why) when the destination does not take the event."""
    if not instance.wants(event):
        message = f"{dest.name} does not take this event ({dest.kind.declined}); nothing sent"
        return {"sent": False, "message": message, "you_sent": event, "request": None, "response": None}
    request = SendRequest(json.dumps(event).encode(), event, source or "", str(event["messageId"]))
    # source "": none (no External ID without a workspace); a batching destination gets a batch of
    # one, as delivery would send it
    if isinstance(instance, BatchDestination):
        outcome = (await instance.send_batch([request], timeout)).events[0]
    else:
        outcome = await instance.send(request, timeout)
    return {
        "sent": True,
        "message": None,
        "you_sent": event,
        "request": outcome.request,
        "response": response_json(outcome),
    }


def response_json(outcome: Outcome) -> dict[str, Any]:
    """ "Response from destination" of one test send."""
    return {
        "delivered": outcome.ok,
        "category": outcome.category.value,
        "category_name": HUMAN_NAMES.get(outcome.category, outcome.category.value),
        "status_code": outcome.status_code,
        "error_type": outcome.error_type,
        "error_message": outcome.error_message,
        "executed_version": outcome.executed_version,
        "log_tail": outcome.log_tail,
        "body": outcome.response_body,
        "latency_ms": round(outcome.latency_ms, 1),
    }
