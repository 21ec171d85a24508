"""One write transaction of the SQLite queue: its clock, what it changed, and the rows staged.

The hot paths are a handful of statements per transaction whatever its size: appends and acks
are staged here and written together at ``flush``, and id lists travel as one JSON parameter
(``json_each``) so every statement stays prepared.

Few statement steps, not only few statements: the sqlite3 module releases the GIL around every
step (every row of an ``executemany`` or of a result), and taking it back while the event loop
runs Python can wait a whole switch interval (5 ms). So rows are inserted many per statement
(multi-row ``VALUES``) and acks are counted by one aggregate row instead of ``RETURNING`` a row
per job.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

NEVER = float("-inf")  # the seen_at of a messageId not in the dedup table
BLOCKED = 2  # jobs.leased of a job waiting behind its lane's head (lanes.py)
BLOCKED_DUE = 1e18  # jobs.due_at of a blocked job: beyond every claim's "due_at <= now"

# Rows per multi-row INSERT at most (7 parameters each: far below SQLite's 32,766). A batch is
# split into power-of-two slices, so a handful of statement shapes cover every size.
INSERT_SLICE = 256
_INSERT_JOB = (
    "INSERT INTO jobs (destination, due_at, message_id, source, call_type, received_at, body, leased, lane) VALUES "
)
_INSERT_DEDUP = "INSERT OR REPLACE INTO dedup (message_id, seen_at) VALUES "
_INSERT_ARCHIVE = "INSERT INTO archive (received_at, message_id, source, call_type, size, body) VALUES "
_COUNT_ARCHIVED = "UPDATE archive_meta SET events = events + ?, bytes = bytes + ? WHERE id = 1"
_LOOKUP_DEDUP = "SELECT message_id, seen_at FROM dedup WHERE message_id IN (SELECT value FROM json_each(?))"
_COUNT_READY = (
    "SELECT destination, COUNT(*) FROM jobs WHERE id IN (SELECT value FROM json_each(?)) AND state = 'ready'"
    " GROUP BY destination"
)
_DELETE_JOBS = "DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?))"


# The next job of each lane given as [destination, lane] pairs, when it is blocked: due now.
_PROMOTE = f"""
    UPDATE jobs SET leased = 0, due_at = ? WHERE leased = {BLOCKED} AND id IN (
        SELECT (SELECT MIN(k.id) FROM jobs k
                WHERE k.destination = json_extract(p.value, '$[0]') AND k.lane = json_extract(p.value, '$[1]')
                AND k.lane IS NOT NULL AND k.state = 'ready')
        FROM json_each(?) p
    )
"""


def json_list(values: Sequence[object]) -> str:
    """``values`` as one JSON array parameter, read by ``json_each(?)``."""
    return orjson.dumps(values).decode()


@functools.cache
def _values(head: str, width: int, rows: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return head + ",".join([one] * rows)


def _insert(conn: sqlite3.Connection, head: str, rows: Sequence[tuple[object, ...]]) -> None:
    """INSERT ``rows`` with one statement step per slice of up to ``INSERT_SLICE`` rows."""
    width = len(rows[0])
    start, total = 0, len(rows)
    while start < total:
        size = min(INSERT_SLICE, 1 << ((total - start).bit_length() - 1))
        conn.execute(_values(head, width, size), [v for row in rows[start : start + size] for v in row])
        start += size


@dataclass
class Tx:
    """One write transaction: the connection, its clock, and what it changed so far."""

    conn: sqlite3.Connection
    now: float
    committed_ready: int  # waiting (ready) jobs committed before this transaction
    delta: Counter[str] = field(default_factory=Counter)  # ready jobs added/removed per destination
    ready_change: int = 0  # sum of ``delta``
    known: dict[str, float] = field(default_factory=dict)  # messageId -> seen_at (NEVER: not seen)
    fresh: set[str] = field(default_factory=set)  # messageIds first seen in this transaction
    dedup_rows: list[tuple[str, float]] = field(default_factory=list)
    job_rows: list[tuple[str, float, str, str, str, float, bytes, int, str | None]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # job ids
    acked_lanes: list[tuple[str, str]] = field(default_factory=list)  # (destination, lane) of acked lane heads
    archive_rows: list[tuple[float, str, str, str, int, bytes]] = field(default_factory=list)
    archived_bytes: int = 0  # of ``archive_rows``

    @property
    def ready_total(self) -> int:
        return self.committed_ready + self.ready_change

    def count(self, destination: str, change: int) -> None:
        self.delta[destination] += change
        self.ready_change += change

    def load_dedup(self, message_ids: list[str]) -> None:
        """Read the dedup entries of ``message_ids`` (all appends of a batch: one query)."""
        known = self.known
        lookup = [mid for mid in message_ids if mid not in known]
        if not lookup:
            return
        known.update(dict.fromkeys(lookup, NEVER))
        known.update(self.conn.execute(_LOOKUP_DEDUP, (json_list(lookup),)))

    def promote(self, lanes: Sequence[tuple[str, str]]) -> None:
        """These (destination, lane)s' heads left (acked, dead-lettered): the next job of each, if
        blocked, is due now (lanes.py)."""
        if lanes:
            self.conn.execute(_PROMOTE, (self.now, json_list([list(pair) for pair in lanes])))

    def flush(self) -> None:
        """Write the staged appends and acks (so later ops in this transaction see them)."""
        if self.acked:
            ids, self.acked = json_list(self.acked), []
            for destination, count in self.conn.execute(_COUNT_READY, (ids,)).fetchall():
                self.count(destination, -count)
            self.conn.execute(_DELETE_JOBS, (ids,))
            if self.acked_lanes:
                lanes, self.acked_lanes = self.acked_lanes, []
                self.promote(lanes)
        if self.dedup_rows:
            _insert(self.conn, _INSERT_DEDUP, self.dedup_rows)
            self.dedup_rows = []
        if self.archive_rows:  # before the jobs: an append's handoff reads the jobs' last_insert_rowid()
            _insert(self.conn, _INSERT_ARCHIVE, self.archive_rows)
            self.conn.execute(_COUNT_ARCHIVED, (len(self.archive_rows), self.archived_bytes))
            self.archive_rows, self.archived_bytes = [], 0
        if self.job_rows:
            _insert(self.conn, _INSERT_JOB, self.job_rows)
            self.job_rows = []
