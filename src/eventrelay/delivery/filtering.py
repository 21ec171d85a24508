"""Destination filters before a send: what the worker sends, or the ``filtered`` outcome.

The filters (``only`` and ``filters`` of the destination, compiled by ``config/filters.py``) see
the parsed event. An event a filter keeps out is not sent: its outcome is ``filtered`` with the
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


def screen(filters: Filters, job: Job, event: dict[str, Any]) -> SendRequest | Outcome:
    """The request to send for ``job`` (its parsed ``event``) after ``filters``, or the
    ``filtered`` outcome naming the filter that kept it out."""
    if not filters.active:
        return SendRequest(job.body, event, job.source, job.message_id)
    result = filters.apply(job.message_id, event)
    if isinstance(result, Filtered):
        return Outcome(Category.FILTERED, Verdict.FILTERED, filter=result.by)
    body = orjson.dumps(result.event) if result.changed else job.body
    return SendRequest(body, result.event, job.source, job.message_id)
