"""The SQLite queue's operations: every queue call (append, claim, ack, ...) becomes an ``Op``
that the writer thread runs inside a transaction shared with the other calls of that moment
(``storage/sqlite_writer.py``). An op refused on its own (``QueueFull``) does not disturb the
others. Nothing here is touched by the event loop except through the ops' results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from eventrelay.core.errors import QueueFull
from eventrelay.core.records import Accepted, DeadStatus, Job
from eventrelay.queue.sqlite.archive_store import archived_size
from eventrelay.queue.sqlite.lanes import DUE_HEADS, block_behind_heads
from eventrelay.queue.sqlite.tx import Tx, json_list
from eventrelay.storage.sqlite_writer import WriteOp

if TYPE_CHECKING:
    from eventrelay.queue.sqlite.store import Store

# Retry-After for QueueFull: delivery drains thousands of jobs per second, so a few seconds
# is usually enough for room to appear without clients hammering a full store.
QUEUE_FULL_RETRY_AFTER = 5.0

# A claim in three statement steps whatever its size (see tx.py on steps): the ids of
# the due jobs by the claim index, the lease on them, and the jobs as ONE row: their fields as a
# JSON array and their bodies concatenated in the same order (JSON holds no bytes), cut apart by
# the lengths in the JSON. Times travel as 17 significant digits: SQLite's default text form
# keeps 15; this one round-trips exactly (checked on 800,000 values below 1e11; SQLite's own
# formatting strays only beyond ~1e200, which no timestamp reaches).
_DUE = """
    SELECT json_group_array(id) FROM (
        SELECT id FROM jobs WHERE destination = ? AND state = 'ready' AND due_at <= ? ORDER BY due_at LIMIT ?
    )
"""
_LEASE = "UPDATE jobs SET due_at = ?, leased = 1 WHERE id IN (SELECT value FROM json_each(?))"
_JOBS = """
    SELECT
        json_group_array(json_array(
            id, message_id, attempts, iif(first_attempt_at IS NULL, NULL, printf('%!.17g', first_attempt_at)),
            source, call_type, printf('%!.17g', received_at), length(body),
            iif(redriven_at IS NULL, NULL, printf('%!.17g', redriven_at)), batch, replay, lane
        )),
        CAST(group_concat(body, '') AS BLOB)
    FROM jobs WHERE id IN (SELECT value FROM json_each(?))
"""


class Op(WriteOp, Protocol):
    """A queue call for the writer (``storage.sqlite_writer.WriteOp``: ``durable``, ``rows``)."""

    # True: the op only stages rows, written together at the next flush (appends, acks);
    # False: staged rows are flushed before it runs, so it sees them.
    staged: bool
    # True: its transaction commits with synchronous=FULL (fsync: survives power loss). Appends
    # (an acknowledged event must never be lost) and re-drives (an operator's act) are durable.
    # The rest (claims, lease extensions, acks, retries, dead letters) commit with NORMAL: written
    # to the WAL, so they survive a process crash (kill -9), and fsynced by the next durable
    # commit; a power loss before that can only replay them: a lease or retry time reverts (the
    # job is tried again) or an ack is lost (the event is delivered twice: at-least-once).
    # Measured: three fsyncs per delivered event become one (queue writer CPU per event at 600
    # events/s: see bench/README.md).
    durable: bool

    def run(self, tx: Tx, store: Store) -> object: ...


class Append:
    __slots__ = ("items", "rows")
    staged = True
    durable = True

    def __init__(self, items: Sequence[Accepted]) -> None:
        self.items = items
        self.rows = len(items)

    def run(self, tx: Tx, store: Store) -> list[bool]:
        items = self.items
        horizon = tx.now - store.dedup_window
        known, fresh = tx.known, tx.fresh  # the batch's dedup entries, loaded by ``Store.run`` for every append
        result = [False] * len(items)
        new: dict[str, Accepted] = {}
        new_jobs = 0
        for index, item in enumerate(items):
            mid = item.message_id
            if mid in new or mid in fresh or known[mid] >= horizon:
                continue
            new[mid] = item
            result[index] = True
            new_jobs += len(item.destinations)
        if not new:
            return result
        if new_jobs and tx.ready_total + new_jobs > store.max_events:
            raise QueueFull(
                f"the queue holds {tx.ready_total} waiting jobs and this request adds {new_jobs};"
                f" storage.max_events is {store.max_events}",
                retry_after=QUEUE_FULL_RETRY_AFTER,
            )
        now = tx.now
        fresh.update(new)
        tx.dedup_rows.extend((mid, now) for mid in new)
        job_rows = tx.job_rows
        if store.archive is not None:  # every accepted event once, in this same commit
            archive_rows = tx.archive_rows
            for mid, item in new.items():
                size = archived_size(item)
                archive_rows.append((item.received_at, mid, item.source, item.call_type, size, item.body))
                tx.archived_bytes += size
        ordered = store.ordered
        for mid, item in new.items():
            destinations = item.destinations
            for destination in destinations if len(destinations) == 1 else dict.fromkeys(destinations):
                # one job per destination, even if named twice; a lane where the destination orders by user
                lane = item.lane if ordered and destination in ordered else None
                row = (destination, now, mid, item.source, item.call_type, item.received_at, item.body, 0, lane)
                job_rows.append(row)
                tx.count(destination, 1)
        return result


class AppendHandoff(Append):
    """``Append``, with some of the new jobs leased at once to delivery workers that reserved
    room for them (``offers``: destination -> (jobs at most, lease seconds)): they are handed
    over when the append commits instead of being claimed by a later transaction. Returns the
    fresh flags and those jobs. Their ids are read back after this op's rows are written:
    a multi-row INSERT from the one writer numbers its rows consecutively, ending at
    ``last_insert_rowid()``."""

    __slots__ = ("offers",)

    def __init__(self, items: Sequence[Accepted], offers: Mapping[str, tuple[int, float]]) -> None:
        super().__init__(items)
        self.offers = offers

    def run(self, tx: Tx, store: Store) -> tuple[list[bool], list[Job]]:  # type: ignore[override]
        first = len(tx.job_rows)
        result = super().run(tx, store)
        rows = tx.job_rows
        # an ordered destination's jobs are never handed over: only a claim knows the lane's head
        left = {d: count for d, (count, _) in self.offers.items() if d not in store.ordered}
        handed: list[int] = []  # positions in ``rows`` of the jobs leased here
        for position in range(first, len(rows)):
            row = rows[position]
            destination = row[0]
            if left.get(destination, 0) > 0:
                left[destination] -= 1
                rows[position] = (*row[:1], tx.now + self.offers[destination][1], *row[2:7], 1, row[8])
                handed.append(position)
        if not handed:
            return result, []
        written = len(rows)
        tx.flush()
        last = tx.conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        first_id = last - written + 1
        jobs = []
        for position in handed:
            destination, _, mid, source, call_type, received_at, body, _, _ = rows[position]
            jobs.append(Job(str(first_id + position), destination, mid, source, call_type, received_at, body))
        return result, jobs


class Claim:
    __slots__ = ("destination", "lease_seconds", "limit", "rows")
    staged = False
    durable = False

    def __init__(self, destination: str, limit: int, lease_seconds: float) -> None:
        self.destination = destination
        self.limit = limit
        self.lease_seconds = lease_seconds
        self.rows = limit

    def run(self, tx: Tx, store: Store) -> list[Job]:
        conn, destination = tx.conn, self.destination
        if destination in store.ordered:  # lane heads only (lanes.py)
            block_behind_heads(tx, destination, self.limit)
            ids = conn.execute(DUE_HEADS, (destination, tx.now, self.limit)).fetchone()[0]
        else:
            ids = conn.execute(_DUE, (destination, tx.now, self.limit)).fetchone()[0]
        if ids == "[]":
            return []
        conn.execute(_LEASE, (tx.now + self.lease_seconds, ids))
        fields, bodies = conn.execute(_JOBS, (ids,)).fetchone()
        bodies = bodies or b""  # NULL when every body is empty
        jobs: list[Job] = []
        end = 0
        rows = orjson.loads(fields)
        for (
            job_id,
            message_id,
            attempts,
            first,
            source,
            call_type,
            received_at,
            size,
            redriven,
            batch,
            replay,
            lane,
        ) in rows:
            start, end = end, end + size
            first_at = None if first is None else float(first)
            body = bodies[start:end]
            jobs.append(
                Job(
                    str(job_id),
                    destination,
                    message_id,
                    source,
                    call_type,
                    float(received_at),
                    body,
                    attempts,
                    first_at,
                    redriven_at=None if redriven is None else float(redriven),
                    batch=batch,
                    replay=replay,
                    lane=lane,
                )
            )
        return jobs


class Ack:
    __slots__ = ("job_id", "lane")
    staged = True
    durable = False
    rows = 1

    def __init__(self, job_id: int, lane: tuple[str, str] | None = None) -> None:
        self.job_id = job_id
        self.lane = lane  # (destination, lane) of a lane head: its lane moves on

    def run(self, tx: Tx, store: Store) -> None:
        tx.acked.append(self.job_id)
        if self.lane is not None:
            tx.acked_lanes.append(self.lane)


@dataclass(frozen=True, slots=True)
class Extend:
    job_id: int
    lease_seconds: float

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> None:
        until = tx.now + self.lease_seconds
        tx.conn.execute(
            "UPDATE jobs SET due_at = ?, leased = 1 WHERE id = ? AND state = 'ready'",
            (until, self.job_id),
        )


@dataclass(frozen=True, slots=True)
class Retry:
    """Due again at ``due_at``; the attempt counted unless ``counted`` is False (a postpone: a
    throttle, not the event's fault)."""

    job_id: int
    due_at: float
    batch: str | None = None  # the job's batch key from now (None clears it)
    counted: bool = True

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> None:
        tx.conn.execute(_RETRY if self.counted else _POSTPONE, (self.due_at, self.batch, tx.now, self.job_id))


_POSTPONE = (
    "UPDATE jobs SET due_at = ?, leased = 0, batch = ?, first_attempt_at = COALESCE(first_attempt_at, ?)"
    " WHERE id = ? AND state = 'ready'"
)
_RETRY = _POSTPONE.replace("leased = 0,", "leased = 0, attempts = attempts + 1,")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    job_id: int
    status: DeadStatus
    reason: str
    lane: tuple[str, str] | None = None  # (destination, lane) of a lane head: its lane moves on

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> None:
        rows = tx.conn.execute(
            "UPDATE jobs SET state = 'dead', dead_status = ?, reason = ?, leased = 0,"
            " attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?)"
            " WHERE id = ? AND state = 'ready' RETURNING destination",
            (self.status, self.reason, tx.now, self.job_id),
        ).fetchall()
        for (destination,) in rows:
            tx.count(destination, -1)
        if rows and self.lane is not None:
            tx.promote([self.lane])


# A fresh attempt count and retry window from now (due_at and redriven_at are both the
# transaction's time); received_at is left alone. Retry and DeadLetter keep redriven_at.
_FRESH = "due_at = ?, leased = 0, attempts = 0, first_attempt_at = NULL, redriven_at = ?, batch = NULL"
_REDRIVE_DEAD = (
    f"UPDATE jobs SET state = 'ready', {_FRESH}, dead_status = NULL, reason = NULL"
    " WHERE destination = ? AND state = 'dead'"
)
# Jobs waiting for a retry: attempted before (attempts > 0) and not claimed (leased = 0). Never
# attempted jobs are due anyway; a claimed one is being attempted right now.
_REDRIVE_RETRYING = (
    f"UPDATE jobs SET {_FRESH} WHERE destination = ? AND state = 'ready' AND leased = 0 AND attempts > 0"
)
_BY_ID = " AND message_id IN (SELECT value FROM json_each(?))"


@dataclass(frozen=True, slots=True)
class Redrive:
    """Dead jobs back to ready, and retrying jobs due now. Not bounded by max_events: it is an
    operator's deliberate act."""

    destination: str
    message_ids: Sequence[str] | None

    staged = False
    durable = True
    rows = 1

    def run(self, tx: Tx, store: Store) -> int:
        args: tuple[object, ...] = (tx.now, tx.now, self.destination)
        by_id = ""
        if self.message_ids is not None:
            args, by_id = (*args, json_list(list(dict.fromkeys(self.message_ids)))), _BY_ID
        revived = tx.conn.execute(_REDRIVE_DEAD + by_id, args).rowcount
        tx.count(self.destination, revived)  # dead jobs join the waiting ones; retrying ones were counted
        return int(revived + tx.conn.execute(_REDRIVE_RETRYING + by_id, args).rowcount)


@dataclass(frozen=True, slots=True)
class SetMaxPages:
    max_pages: int

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> int:
        row = tx.conn.execute(f"PRAGMA max_page_count = {int(self.max_pages)}").fetchone()
        return int(row[0]) if row else 0
