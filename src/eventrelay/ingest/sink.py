"""Where the Tracking API hands accepted events: the one interface between ingest and the rest.

Ingest validates and normalises; what happens next (durable append, hand-off to delivery
workers, waking them) belongs to the sink the runtime plugs in (``delivery/intake.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from eventrelay.core.records import Accepted


class EventSink(Protocol):
    def submit(self, items: Sequence[Accepted]) -> asyncio.Future[list[bool]]:
        """Store ``items``: a future of their fresh flags (False: a duplicate messageId within
        the dedup window), done only once they are durable. Raises or fails the future with a
        ``StorageError`` (``QueueFull``, ``DiskFull``) when they cannot be stored."""
        ...
