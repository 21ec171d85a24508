"""What the delivery worker gives a destination's ``send``, built for a test's event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from eventrelay.destinations.base import SendRequest


def request_for(event: Mapping[str, Any], *, body: bytes | None = None, source: str = "") -> SendRequest:
    """``event`` as a ``SendRequest``: its JSON as the body unless ``body`` is given; ``source`` ""
    (none) unless given, so a destination without a workspace id has no External ID."""
    raw = orjson.dumps(event) if body is None else body
    return SendRequest(raw, event, source, str(event.get("messageId", "")))
