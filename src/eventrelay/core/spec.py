"""The Segment spec eventrelay speaks: call types and the documented limits, with their reasons.

Every package that needs a call type or a limit reads it here (ingest validates with it,
destinations route by it, the OpenAPI document and the CLI list it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

CALL_TYPES: Final = ("track", "identify", "page", "screen", "group", "alias")
"""The six call types, in Segment's documentation order. Batches (``/v1/batch``) hold these."""
CALL_TYPE_SET: Final = frozenset(CALL_TYPES)

SHORT_FORMS: Final = {
    "t": "track",
    "i": "identify",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
    "b": "batch",
}
"""analytics.js's browser paths (``/v1/t`` ...), sent as ``text/plain`` to avoid a CORS preflight."""

MAX_EVENT_BYTES: Final = 32 * 1024
"""One event, as JSON: Segment's documented limit (analytics-python checks the same 32 KB)."""
MAX_BATCH_BYTES: Final = 500 * 1024
"""One batch request, as JSON (decompressed): Segment's documented limit."""
MAX_BATCH_EVENTS: Final = 2500
"""Events in one batch request: Segment's documented limit."""
MAX_MESSAGE_ID_CHARS: Final = 100
"""Segment's documented messageId limit."""


def ordering_key(event: Mapping[str, Any]) -> str | None:
    """The user an event belongs to, for per-user ordering: ``userId``, else ``anonymousId``
    (prefixed ``u:`` / ``a:``, so a userId never shares a lane with an equal anonymousId);
    None when it has neither."""
    user = event.get("userId")
    if user is not None and user != "":
        return f"u:{user}"
    anonymous = event.get("anonymousId")
    if anonymous is not None and anonymous != "":
        return f"a:{anonymous}"
    return None


EVENT_LIMIT: Final = "32 KB per event"
BATCH_LIMIT: Final = "500 KB per batch request"
BATCH_EVENTS_LIMIT: Final = "2,500 events per batch"

SERVER_FIELDS_BYTES: Final = 512
"""How the 32 KB per-event limit is measured, the same for ``/v1/track`` and for a batch item: on
the event's JSON as stored (compact), which may exceed ``MAX_EVENT_BYTES`` by this allowance for
the fields the server adds (messageId, receivedAt, timestamps, context.ip, channel, version, type:
well under it) plus, for a batch item, the size of the batch-level context/integrations merged
into it. An event a client measured at 32 KB (analytics-python measures its JSON with spaces,
never smaller) is therefore always accepted."""
MAX_EVENT_DEPTH: Final = 64
"""Levels of nesting in one event (the event object is level 1, ``properties`` level 2, ...).
orjson, which stores events and encodes every answer, refuses more than 254 levels, and a stored
event is encoded again a few levels deep inside API answers and delivery samples; 64 leaves that
room and is far beyond what real events nest (Segment's specs nest 3 or 4). A body nested deeper
than 1,024 levels is refused whole: the JSON parser stops there."""
EVENT_DEPTH_LIMIT: Final = "64 levels of nesting per event"
