"""Destination filters before a send: what the worker sends, or the outcome recording why
nothing is sent (the stored body is not a JSON object; a filter kept the event out).

The stored body is parsed here, once per attempt (single event or batch alike); the filters
(``only`` and ``filters`` of the destination, compiled by ``config/filters.py``) see the parsed
event. An event a filter keeps out is not sent: its outcome is ``filtered`` with the
filter that matched, recorded and acknowledged (``delivery/decide.py``), never retried and never
an error. An event a property filter changed is sent re-encoded; the delivery log's "You sent"
keeps the event as it was accepted.
"""

from __future__ import annotations

from typing import Any

import orjson

from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.core.records import Job
from eventrelay.destinations.base import SendRequest
from eventrelay.filters.rules import Filtered, Filters

NO_FILTERS = Filters()


def event_of(body: bytes) -> dict[str, Any] | None:
    """The stored event, or None when it is not a JSON object."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def screen(filters: Filters, job: Job) -> SendRequest | Outcome:
    """The request to send for ``job`` after ``filters``; else the outcome of an attempt that
    sends nothing: ``filtered`` naming the filter that kept it out, or a discard of a body that
    is not a JSON object (nothing to route by)."""
    event = event_of(job.body)
    if event is None:
        return Outcome(
            Category.CONFIGURATION,
            Verdict.DISCARD,
            error_type="InvalidEvent",
            error_message="the stored event is not a JSON object",
        )
    if not filters.active:
        return SendRequest(job.body, event, job.source, job.message_id)
    result = filters.apply(job.message_id, event)
    if isinstance(result, Filtered):
        return Outcome(Category.FILTERED, Verdict.FILTERED, filter=result.by)
    body = orjson.dumps(result.event) if result.changed else job.body
    return SendRequest(body, result.event, job.source, job.message_id)
