"""Batch requests (``/v1/batch``, ``/v1/import``, ``/v1/b``): split, merge, partial acceptance.

Each item needs a ``type`` (one of the six call types). Batch-level ``context`` and
``integrations`` merge into each item (shallowly; the item's keys win), and a batch-level
``sentAt`` applies to items that carry none (analytics-python and analytics-node put it there).
An invalid item does not cost the valid ones: it is listed in ``rejected`` with its index, its
messageId and the field at fault, and the rest are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventrelay.core.errors import PayloadError
from eventrelay.core.spec import BATCH_EVENTS_LIMIT, CALL_TYPE_SET, MAX_BATCH_EVENTS
from eventrelay.ingest.body import json_type
from eventrelay.ingest.encode import encode_event, encode_json
from eventrelay.ingest.normalise import normalise
from eventrelay.ingest.validate import validate

_MERGED = ("context", "integrations")


@dataclass(frozen=True, slots=True)
class Rejection:
    """One batch item refused, and why."""

    index: int
    message_id: str | None
    field: str | None
    error: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "field": self.field, "error": self.error}


def batch_items(body: dict[str, Any]) -> list[Any]:
    """The ``batch`` array of a batch request, within ``MAX_BATCH_EVENTS``."""
    items = body.get("batch")
    if not isinstance(items, list):
        message = "a batch request needs batch, an array of events"
        if "batch" in body:
            message += f", not {json_type(items)}"
        raise PayloadError(message, field="batch")
    if not items:
        raise PayloadError("batch is empty; send at least one event", field="batch")
    if len(items) > MAX_BATCH_EVENTS:
        raise PayloadError(
            f"batch holds {len(items)} events; the limit is {MAX_BATCH_EVENTS} events ({BATCH_EVENTS_LIMIT})",
            field="batch",
            limit=BATCH_EVENTS_LIMIT,
        )
    for key in _MERGED:
        value = body.get(key)
        if value is not None and not isinstance(value, dict):
            raise PayloadError(f"batch-level {key} must be an object, not {json_type(value)}", field=key)
    return items


def prepare_batch(
    body: dict[str, Any],
    *,
    received_at: float,
    received_iso: str,
    ip: str | None,
    channel: str,
) -> tuple[list[tuple[dict[str, Any], bytes]], list[Rejection]]:
    """Validate and normalise every item; returns ((event, its JSON) accepted, rejections).

    An item is encoded once, as stored, within the per-event limits of ``encode_event`` (the same
    as ``/v1/track``'s; its size allowance includes the batch-level context/integrations merged
    into it); a batch-level context nested past the depth limit refuses the whole batch."""
    items = batch_items(body)
    shared = {key: body[key] for key in _MERGED if body.get(key)}
    sent_at = body.get("sentAt")
    merged = len(encode_json(shared)) if shared else 0
    accepted: list[tuple[dict[str, Any], bytes]] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        try:
            event = _item(item, shared, sent_at)
            call_type = event["type"]
            validate(event, call_type)
            normalise(event, call_type, received_at=received_at, received_iso=received_iso, ip=ip, channel=channel)
            accepted.append((event, encode_event(event, merged=merged, field="batch")))
        except PayloadError as exc:
            rejected.append(Rejection(index, _message_id(item), exc.field, exc.message))
    return accepted, rejected


def _item(item: Any, shared: dict[str, Any], sent_at: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise PayloadError(f"a batch item must be an object, not {json_type(item)}", field="batch")
    call_type = item.get("type")
    if not isinstance(call_type, str) or call_type not in CALL_TYPE_SET:
        raise PayloadError(
            f"type must be one of {', '.join(sorted(CALL_TYPE_SET))}, not {_shown(call_type)}", field="type"
        )
    for key, value in shared.items():
        own = item.get(key)
        if own is None:
            item[key] = dict(value)
        elif isinstance(own, dict):
            item[key] = {**value, **own}
    if sent_at is not None and item.get("sentAt") is None:
        item["sentAt"] = sent_at
    return item


def _message_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("messageId")
        if isinstance(value, str):
            return value[:100]
    return None


def _shown(value: object) -> str:
    return repr(value)[:40] if isinstance(value, str) else json_type(value)
