"""Re-drive: put failed/discarded events of a destination back into delivery, and make retrying
ones due now with a fresh window ("Retry now"; admin API, page and CLI).

The queue knows only ids, the delivery log knows why each event failed, when, and its state; a
redrive filtered by category, time or state therefore picks the ids from the log, then asks the queue.

Order matters: the log rows are marked ``retrying`` *before* the queue makes the jobs due, so a
new attempt recorded right after (by a running engine) is never overwritten by the mark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from eventrelay.deliverylog.base import DeliveryLog
from eventrelay.queue.base import Queue

CHUNK = 500  # ids per queue call: bounded statements, and a progress bar that moves
MAX_SELECTED = 1_000_000  # ids a filtered redrive collects from the log at most (~60 MB of ids)

Progress = Callable[[int, int], None]  # (done, total)


REDRIVABLE = ("failed", "discarded", "retrying")  # the states a redrive moves (delivered ones stay)


@dataclass(frozen=True, slots=True)
class RedriveFilter:
    """Which events to re-drive; every criterion given must hold (none: every redrivable event)."""

    message_ids: Sequence[str] | None = None
    category: str | None = None
    """Category of the event's latest attempt."""
    since: float | None = None
    until: float | None = None
    statuses: tuple[str, ...] | None = None
    """States among ``REDRIVABLE`` (None: all of them)."""

    @property
    def everything(self) -> bool:
        return self.message_ids is None and not self.through_log

    @property
    def through_log(self) -> bool:
        """Whether the ids come from the delivery log (category, time or state asked)."""
        return (self.category, self.since, self.until, self.statuses) != (None, None, None, None)


async def redrive(
    queue: Queue,
    log: DeliveryLog,
    destination: str,
    wanted: RedriveFilter,
    *,
    now: float,
    progress: Progress | None = None,
) -> int:
    """Re-queue the dead jobs of ``destination`` matched by ``wanted``, and make its retrying ones
    due now; returns how many moved."""
    if wanted.everything:
        await log.redriven(destination, None, now)
        moved = await queue.redrive(destination, None)
        if progress is not None:
            progress(moved, moved)
        return moved
    ids = await select_ids(log, destination, wanted)
    moved = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        await log.redriven(destination, chunk, now)
        moved += await queue.redrive(destination, chunk)
        if progress is not None:
            progress(min(start + CHUNK, len(ids)), len(ids))
    return moved


def redrive_summary(destination: str, moved: int, wanted: RedriveFilter) -> str:
    """What a person reads after a redrive: how many events moved, and when none did, why."""
    if moved:
        return f"re-drove {moved} event{'s' if moved != 1 else ''} of {destination}"
    return f"re-drove 0 events of {destination}: {nothing_matched(destination, wanted)}"


def nothing_matched(destination: str, wanted: RedriveFilter) -> str:
    """Why a redrive moved nothing: no event is failed, discarded or retrying in its filter."""
    given = list(wanted.statuses or REDRIVABLE)
    states = given[0] if len(given) == 1 else f"{', '.join(given[:-1])} or {given[-1]}"
    if wanted.everything:
        return f"no event of {destination} is {states}"
    parts = []
    if wanted.message_ids is not None:
        n = len(wanted.message_ids)
        parts.append(f"{n} message id{'s' if n != 1 else ''}")
    if wanted.category is not None:
        parts.append(f"category {wanted.category}")
    if wanted.since is not None:
        parts.append(f"since {_iso(wanted.since)}")
    if wanted.until is not None:
        parts.append(f"until {_iso(wanted.until)}")
    if not parts:
        return f"no event of {destination} is {states}"
    return f"no {states} event of {destination} matches that filter ({', '.join(parts)})"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def select_ids(log: DeliveryLog, destination: str, wanted: RedriveFilter) -> list[str]:
    """The ids to redrive: the given ones, narrowed by category/time through the log when asked."""
    if not wanted.through_log:
        return list(dict.fromkeys(wanted.message_ids or ()))
    allowed = set(wanted.message_ids) if wanted.message_ids is not None else None
    ids: list[str] = []
    for status in wanted.statuses or REDRIVABLE:
        rows = await log.deliveries(
            destination=destination,
            category=wanted.category,
            status=status,
            since=wanted.since,
            until=wanted.until,
            limit=MAX_SELECTED,
        )
        ids.extend(r.message_id for r in rows if allowed is None or r.message_id in allowed)
    return ids
