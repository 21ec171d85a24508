"""Which archived events a replay sends: its window, and each event's body checked against the
event name, the ``--where`` condition (FQL, as destination filters) and the destination's routing
(its sources, the event's ``integrations``, what the destination wants), as live traffic is routed.

``plan`` is the dry run: how many events match and the time range they cover, and why the window
is shorter than asked when the archive no longer holds its start (retention or size).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.core.size import format_size
from eventrelay.delivery.filtering import event_of
from eventrelay.delivery.routing import route
from eventrelay.destinations.base import Destination
from eventrelay.filters.evaluate import Predicate, compile_expr
from eventrelay.filters.fql_parser import parse
from eventrelay.queue.archive import ArchivedEvent, ArchiveInfo, ArchiveQueue, Window

SCAN_PAGE = 500  # archived events read per page: ~0.6 MB, a few ms of the reader thread


@dataclass(frozen=True, slots=True)
class Selection:
    """What a replay asks for beyond the window: a track event name and an FQL condition."""

    event: str | None = None
    where: str | None = None


class Matcher:
    """One replay's test of an archived event: name, condition, routing to the destination."""

    def __init__(self, selection: Selection, config: DestinationConfig, destination: Destination) -> None:
        self._event = selection.event
        self._where: Predicate | None = compile_expr(parse(selection.where)) if selection.where else None
        self._configs = [config]
        self._destinations: Mapping[str, Destination] = {config.name: destination}

    def matches(self, archived: ArchivedEvent) -> bool:
        event = event_of(archived.body)
        if event is None:
            return False
        if self._event is not None and event.get("event") != self._event:
            return False
        if self._where is not None and not self._where(event):
            return False
        return bool(route(self._configs, self._destinations, archived.source, event))


@dataclass(frozen=True, slots=True)
class Plan:
    """A dry run. ``window``: what the archive can still give of the window asked (its ``since``
    raised to the oldest event kept); ``note`` says why it is shorter, when it is."""

    destination: str
    asked: Window
    window: Window
    events_in_window: int  # archived events of the window (source and type applied)
    matched: int  # of those, the ones the replay would send
    first_at: float | None  # receivedAt of the first and last matching event
    last_at: float | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "since": self.asked.since,
            "until": self.asked.until,
            "window": {"since": self.window.since, "until": self.window.until},
            "events_in_window": self.events_in_window,
            "matched": self.matched,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "note": self.note,
        }


def effective_window(asked: Window, info: ArchiveInfo, now: float) -> tuple[Window, str | None]:
    """``asked`` with its start moved to what the archive still holds, and why (None: not moved)."""
    horizon = now - info.retention
    if asked.since < horizon:
        note = (
            f"the archive keeps events for {_duration(info.retention)} (archive.retention): events received "
            f"before {_when(horizon)} are past it, so the window starts there"
        )
        return _since(asked, horizon), note
    if info.pruned_until is not None and asked.since <= info.pruned_until:
        start = info.oldest if info.oldest is not None else info.pruned_until
        note = (
            f"the archive keeps at most {format_size(info.max_bytes)} (archive.max_bytes): events received "
            f"before {_when(start)} were removed to stay under it, so the window starts there"
        )
        return _since(asked, start), note
    return asked, None


async def plan(
    queue: ArchiveQueue, destination: str, asked: Window, matcher: Matcher, now: float | None = None
) -> Plan:
    """The dry run: read the window's archived events (on the archive's reader, never blocking
    ingest or delivery) and count the ones ``matcher`` takes."""
    info = await queue.archive_info()
    window, note = effective_window(asked, info, time.time() if now is None else now)
    span = await queue.archive_span(window)
    matched, first_at, last_at = 0, None, None
    if span.first_seq is not None and span.last_seq is not None:
        cursor = span.first_seq - 1
        while page := await queue.archived(window, cursor, span.last_seq, SCAN_PAGE):
            for archived in page:
                if matcher.matches(archived):
                    matched += 1
                    first_at = archived.received_at if first_at is None else first_at
                    last_at = archived.received_at
            cursor = page[-1].seq
    return Plan(destination, asked, window, span.events, matched, first_at, last_at, note)


def _since(window: Window, start: float) -> Window:
    return Window(max(window.since, start), window.until, window.source, window.call_type)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
