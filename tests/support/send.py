"""What the delivery worker gives a destination's ``send``, built for a test's event."""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Mapping
from typing import Any

import orjson

from eventrelay.destinations.base import SendRequest


def request_for(event: Mapping[str, Any], *, body: bytes | None = None, source: str = "") -> SendRequest:
    """``event`` as a ``SendRequest``: its JSON as the body unless ``body`` is given; ``source`` ""
    (none) unless given, so a destination without a workspace id has no External ID."""
    raw = orjson.dumps(event) if body is None else body
    return SendRequest(raw, event, source, str(event.get("messageId", "")))


def batch_post(url: str, write_key: str, events: list[dict[str, Any]]) -> urllib.request.Request:
    """The POST of ``events`` to ``url``'s ``/v1/batch`` as a Segment client sends it (Basic auth
    with the write key)."""
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    return urllib.request.Request(
        f"{url}/v1/batch",
        data=orjson.dumps({"batch": events}),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
    )


def post_batches(url: str, write_key: str, events: list[dict[str, Any]], *, batch: int = 100) -> None:
    """POST ``events`` to ``url``'s ``/v1/batch`` in batches of ``batch`` (``batch_post``); every
    batch must be accepted."""
    for start in range(0, len(events), batch):
        with urllib.request.urlopen(batch_post(url, write_key, events[start : start + batch]), timeout=30) as answer:
            assert answer.status == 200
