"""Replays: a window of archived events re-sent into one destination as new jobs.

    replays = Replays(queue, log, targets, notify)
    plan = await replays.dry_run(request)         # how many, which time range, why shorter
    record = await replays.start(request)         # returns at once; a task enqueues the jobs
    await replays.cancel(record.id)

Each replay's task walks the archive in receipt order from its cursor. It keeps at most
``limit`` of its jobs waiting or in flight (``delivery.replay_share`` of the destination's
concurrency, default half), so live traffic keeps the rest of the destination's slots. Each step
enqueues the matching events of the next page together with the new cursor in one commit
(``ArchiveQueue.enqueue_replay``): after a crash the task resumes at the committed cursor, so the
replay itself sends nothing twice and skips nothing. The jobs are ordinary jobs (retries, dead
letters, the destination's current settings and filters), each marked with the replay id, which
the delivery log keeps with every attempt. The replay is done when the cursor is at the end of
the window and none of its jobs waits any more.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.core.errors import ReplayError
from eventrelay.delivery.replay_select import SCAN_PAGE, Matcher, Plan, Selection, effective_window, plan
from eventrelay.deliverylog.base import DeliveryLog
from eventrelay.destinations.base import Destination
from eventrelay.queue.archive import ArchiveQueue, ReplayRecord, Window
from eventrelay.queue.base import Queue

POLL_MIN = 0.002  # first wait for the replay's jobs to settle while its share is full (an indexed count)
POLL_MAX = 0.05  # ... doubling up to this while none settles
RETRY_SECONDS = 1.0  # after a storage error, before the task tries again
ID_BYTES = 8  # rp_ + 16 hex characters

log = logging.getLogger("eventrelay.delivery")


class Targets(Protocol):
    """Where replays find destinations (the Runtime)."""

    @property
    def destinations(self) -> Mapping[str, Destination]: ...

    def destination_config(self, name: str) -> DestinationConfig | None: ...


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    destination: str
    window: Window
    selection: Selection = field(default_factory=Selection)
    share: float | None = None  # of the destination's concurrency; None: its delivery.replay_share


class Replays:
    """The replays of one process: dry runs, starts, cancels, progress, and one task per running one."""

    def __init__(
        self, queue: Queue, log: DeliveryLog, targets: Targets, notify: Callable[[Iterable[str]], None]
    ) -> None:
        self._queue = queue
        self._log = log
        self._targets = targets
        self._notify = notify
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    async def resume(self) -> None:
        """Start a task for every replay still running (a restart resumes where it stopped)."""
        queue = self._archive()
        for record in await queue.replays():
            if record.state == "running":
                self._spawn(record)

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- what the API and the CLI ask -----------------------------------------------------------
    async def dry_run(self, request: ReplayRequest, now: float | None = None) -> Plan:
        config, destination = self._target(request.destination)
        matcher = Matcher(request.selection, config, destination)
        return await plan(await self._kept(), request.destination, request.window, matcher, now)

    async def start(self, request: ReplayRequest, now: float | None = None) -> ReplayRecord:
        config, destination = self._target(request.destination)
        Matcher(request.selection, config, destination)  # refuses a bad condition before anything is stored
        queue = await self._kept()
        at = time.time() if now is None else now
        window, _ = effective_window(request.window, await queue.archive_info(), at)
        span = await queue.archive_span(window)
        share = request.share if request.share is not None else config.delivery.replay_share
        record = ReplayRecord(
            id=f"rp_{secrets.token_hex(ID_BYTES)}",
            destination=request.destination,
            window=window,
            event=request.selection.event,
            where=request.selection.where,
            limit=max(1, math.floor(config.delivery.concurrency * share)),
            first_seq=span.first_seq,
            last_seq=span.last_seq,
            matched=span.events,
            cursor=(span.first_seq or 1) - 1,
            enqueued=0,
            skipped=0,
            state="running",
            created_at=at,
        )
        await queue.create_replay(record)
        self._spawn(record)
        return record

    async def cancel(self, replay_id: str) -> ReplayRecord:
        record = await self.get(replay_id)
        if record.state != "running":
            raise ReplayError(f"replay {replay_id} is {record.state}, not running")
        task = self._tasks.pop(replay_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._archive().end_replay(replay_id, "cancelled")
        return await self.get(replay_id)

    async def get(self, replay_id: str) -> ReplayRecord:
        record = await self._archive().replay(replay_id)
        if record is None:
            raise ReplayError(f"no replay {replay_id}", status=404)
        return record

    async def list(self, destination: str | None = None) -> list[ReplayRecord]:
        return await self._archive().replays(destination)

    async def progress(self, record: ReplayRecord) -> dict[str, Any]:
        """The replay as the API shows it: its window, how far it got, and its events by state."""
        queue = self._archive()
        waiting, dead = await queue.replay_waiting(record.id), await queue.replay_dead(record.id)
        considered = record.enqueued + record.skipped
        return {
            "id": record.id,
            "destination": record.destination,
            "state": record.state,
            "since": record.window.since,
            "until": record.window.until,
            "source": record.window.source,
            "type": record.window.call_type,
            "event": record.event,
            "where": record.where,
            "max_in_flight": record.limit,
            "events_in_window": record.matched,
            "considered": considered,
            "enqueued": record.enqueued,
            "skipped": record.skipped,
            "waiting": waiting,
            "dead_lettered": dead,
            "progress": 1.0 if record.state == "done" else _share(considered - waiting, record.matched),
            "counts": await self._log.replay_counts(record.id),
            "created_at": record.created_at,
            "finished_at": record.finished_at,
        }

    # -- the task of one replay ----------------------------------------------------------------
    def _spawn(self, record: ReplayRecord) -> None:
        task = asyncio.create_task(self._run(record), name=f"eventrelay-replay-{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(lambda t: self._ended(record.id, t))

    def _ended(self, replay_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(replay_id) is task:
            del self._tasks[replay_id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("replay %s stopped", replay_id, exc_info=exc)

    async def _run(self, record: ReplayRecord) -> None:
        while True:
            try:
                if await self._step(record):
                    return
            except (ReplayError, asyncio.CancelledError):
                raise
            except Exception:  # storage trouble: the cursor is where the last commit left it
                log.exception("replay %s: a step failed; trying again", record.id)
                await asyncio.sleep(RETRY_SECONDS)
            fresh = await self._archive().replay(record.id)
            if fresh is None or fresh.state != "running":
                return
            record = fresh

    async def _step(self, record: ReplayRecord) -> bool:
        """Enqueue what the replay's share has room for; True when the replay has ended."""
        queue = self._archive()
        found = self._find(record.destination)
        if found is None:  # the destination was removed: nothing can be sent any more
            log.warning("replay %s: destination %s no longer exists; cancelled", record.id, record.destination)
            await queue.end_replay(record.id, "cancelled")
            return True
        matcher = Matcher(Selection(record.event, record.where), *found)
        last = record.last_seq if record.last_seq is not None else record.cursor  # None: an empty window
        cursor = record.cursor
        pause = POLL_MIN
        while True:
            waiting = await queue.replay_waiting(record.id)
            room = record.limit - waiting
            end = cursor >= last
            if end and not waiting:
                await queue.end_replay(record.id, "done")
                return True
            if end or room <= 0:
                await asyncio.sleep(pause)
                pause = min(pause * 2, POLL_MAX)
                continue
            pause = POLL_MIN
            page = await queue.archived(record.window, cursor, last, min(SCAN_PAGE, max(room, 1) * 4))
            seqs: list[int] = []
            skipped = 0
            new_cursor = last if not page else cursor
            for archived in page:
                if len(seqs) >= room:
                    break
                new_cursor = archived.seq
                if matcher.matches(archived):
                    seqs.append(archived.seq)
                else:
                    skipped += 1
            if not await queue.enqueue_replay(record.id, cursor, new_cursor, seqs, skipped):
                return False  # cancelled meanwhile (or moved by another task): look again
            cursor = new_cursor
            if seqs:
                self._notify((record.destination,))

    # -- helpers -------------------------------------------------------------------------------
    def _archive(self) -> ArchiveQueue:
        if not isinstance(self._queue, ArchiveQueue):
            raise ReplayError("this storage backend keeps no archive to replay from")
        return self._queue

    async def _kept(self) -> ArchiveQueue:
        """The archive, refusing when it keeps nothing (``archive: {enabled: false}``)."""
        queue = self._archive()
        if not (await queue.archive_info()).enabled:
            raise ReplayError("the archive is off (archive: {enabled: false}): there are no events to replay")
        return queue

    def _find(self, name: str) -> tuple[DestinationConfig, Destination] | None:
        config = self._targets.destination_config(name)
        destination = self._targets.destinations.get(name)
        return None if config is None or destination is None else (config, destination)

    def _target(self, name: str) -> tuple[DestinationConfig, Destination]:
        found = self._find(name)
        if found is None:
            raise ReplayError(f"no destination named {name!r}", status=404)
        if not found[0].enabled:
            raise ReplayError(f"destination {name!r} is disabled; enable it to replay into it")
        return found


def _share(done: int, total: int) -> float:
    return 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
