"""The batch invoke: its payload, and the per-event results a function answers with.

Payload: ``{"batch": [event, ...]}``, the Tracking API's ``/v1/batch`` shape, the events as
stored and in the order given. It is built by joining the stored bodies (no re-encoding), so its
size is known before it is built: ``ENVELOPE_BYTES`` + the bodies + one ``,`` between two events.

Answer, the convention of Lambda's own event sources (SQS, Kinesis, DynamoDB Streams with
``ReportBatchItemFailures``): ``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}, ...]}``.

    no batchItemFailures key, null, [] or not a JSON object   every event delivered
    a list of {"itemIdentifier": "<id>"}                      those events failed (retried on their own);
                                                              an id that is not in the batch is ignored,
                                                              with a warning
    anything else (not a list, an entry without a non-empty   unreadable: the whole batch failed, as
    string itemIdentifier)                                    Lambda treats such an answer
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

PREFIX = b'{"batch":['
SUFFIX = b"]}"
SEPARATOR = b","
ENVELOPE_BYTES = len(PREFIX) + len(SUFFIX)
MAX_UNKNOWN_SHOWN = 5  # unknown itemIdentifiers quoted in the warning; the rest are counted


def encode(bodies: Sequence[bytes]) -> bytes:
    """The payload carrying ``bodies`` (each one event's JSON)."""
    return PREFIX + SEPARATOR.join(bodies) + SUFFIX


@dataclass(frozen=True, slots=True)
class ItemResults:
    """What the function's answer says of the events of its batch."""

    failed: frozenset[str]  # messageIds reported failed (only ids of the batch)
    warning: str | None = None  # what was ignored (unknown ids)
    unreadable: str | None = None  # why the answer cannot be read: then the whole batch failed


def read_results(body: bytes, message_ids: Collection[str]) -> ItemResults:
    """Read a function's answer to a batch of ``message_ids`` (see the module doc)."""
    doc = _json(body)
    failures = doc.get("batchItemFailures") if isinstance(doc, dict) else None
    if failures is None:
        return ItemResults(frozenset())
    if not isinstance(failures, list):
        return ItemResults(frozenset(), unreadable=f"batchItemFailures is a {_kind(failures)}, not a list")
    ids: list[str] = []
    for position, entry in enumerate(failures):
        item = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(item, str) or not item:
            return ItemResults(
                frozenset(),
                unreadable=f"batchItemFailures[{position}] has no itemIdentifier (a non-empty messageId string)",
            )
        ids.append(item)
    unknown = [i for i in dict.fromkeys(ids) if i not in message_ids]
    failed = frozenset(ids).difference(unknown)
    return ItemResults(failed, warning=_unknown_warning(unknown) if unknown else None)


def _unknown_warning(unknown: list[str]) -> str:
    shown = ", ".join(repr(i[:100]) for i in unknown[:MAX_UNKNOWN_SHOWN])
    more = f" and {len(unknown) - MAX_UNKNOWN_SHOWN} more" if len(unknown) > MAX_UNKNOWN_SHOWN else ""
    return f"batchItemFailures named {len(unknown)} itemIdentifier(s) not in this batch, ignored: {shown}{more}"


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _kind(value: Any) -> str:
    return {dict: "object", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "value")
