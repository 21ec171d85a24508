"""Per-user ordering in the SQLite queue: claim only lane heads (``OrderedQueue``).

A job of an ordered destination carries its event's lane (``jobs.lane``; NULL otherwise). The
lane's head is its oldest job still waiting (``state = 'ready'``, lowest id: ids grow in receipt
order); only heads are claimed. Jobs behind a head are parked as *blocked* once a claim meets
them (``leased = 2``, ``due_at = BLOCKED_DUE``: out of every claim's range scan, so a long lane
behind a retrying head costs nothing per claim), and the next one is made due (``leased = 0``,
``due_at`` now) when its head leaves the lane: acked, or dead-lettered as failed or discarded.
A head that is retried or postponed stays the head. Everything is in the queue's transactions,
so order survives kill -9 and restarts (a head in flight at a crash is claimed again first).

    due, not blocked, no older waiting job in its lane     -> claimable (the head)
    due, not blocked, an older waiting job in its lane     -> blocked when a claim meets it
    head acked / dead-lettered                             -> the lane's next job: due now

Destinations stop being ordered (``SetOrdering`` without them): their blocked jobs are due now.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventrelay.queue.base import BlockedLane
from eventrelay.queue.sqlite.tx import BLOCKED, BLOCKED_DUE, Tx, json_list

if TYPE_CHECKING:
    from eventrelay.queue.sqlite.store import Store

BLOCK_PER_CLAIM = 4  # a claim of n blocks up to BLOCK_PER_CLAIM * n jobs it meets behind heads
# The admin view of blocked lanes reads at most this many waiting ordered jobs of a destination
# (it runs on the writer thread: ~20 ms at most, however long the queue), and looks at the heads
# of at most LANES_EXAMINED_PER_ROW x the lanes asked for.
LANE_SCAN_MAX = 100_000
LANES_EXAMINED_PER_ROW = 4

# An older waiting job of the same lane exists (the partial index jobs_lane answers it).
_BEHIND = (
    "EXISTS (SELECT 1 FROM jobs k WHERE k.destination = j.destination AND k.lane = j.lane"
    " AND k.lane IS NOT NULL AND k.state = 'ready' AND k.id < j.id)"
)
BLOCK = f"""
    UPDATE jobs SET leased = {BLOCKED}, due_at = {BLOCKED_DUE!r} WHERE id IN (
        SELECT j.id FROM jobs j WHERE j.destination = ? AND j.state = 'ready' AND j.due_at <= ?
            AND j.lane IS NOT NULL AND {_BEHIND} ORDER BY j.due_at LIMIT ?
    )
"""
DUE_HEADS = f"""
    SELECT json_group_array(id) FROM (
        SELECT j.id FROM jobs j WHERE j.destination = ? AND j.state = 'ready' AND j.due_at <= ?
            AND (j.lane IS NULL OR NOT {_BEHIND}) ORDER BY j.due_at LIMIT ?
    )
"""
_UNBLOCK = f"""
    UPDATE jobs SET leased = 0, due_at = ? WHERE lane IS NOT NULL AND state = 'ready' AND leased = {BLOCKED}
        AND destination NOT IN (SELECT value FROM json_each(?))
"""
_BLOCKED_LANES = f"""
    SELECT lane, COUNT(*) AS events, MIN(id) FROM (
        SELECT lane, id, leased FROM jobs WHERE destination = ? AND lane IS NOT NULL AND state = 'ready' LIMIT ?
    ) GROUP BY lane HAVING events > 1 AND SUM(leased = {BLOCKED}) > 0 ORDER BY events DESC LIMIT ?
"""
_HEADS = "SELECT id, message_id, attempts, due_at, leased FROM jobs WHERE id IN (SELECT value FROM json_each(?))"


def block_behind_heads(tx: Tx, destination: str, limit: int) -> None:
    """Park due jobs that wait behind their lane's head, so the claim after this finds heads."""
    tx.conn.execute(BLOCK, (destination, tx.now, limit * BLOCK_PER_CLAIM))


@dataclass(frozen=True, slots=True)
class SetOrdering:
    """Which destinations are ordered by lane from now on; blocked jobs of the others are due now."""

    destinations: Collection[str]

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> None:
        store.ordered = frozenset(self.destinations)
        tx.conn.execute(_UNBLOCK, (tx.now, json_list(sorted(store.ordered))))


@dataclass(frozen=True, slots=True)
class BlockedLanes:
    """Read-only: the lanes of ``destination`` whose head is being retried (it has failed at
    least once, or waits for a retry), with the jobs waiting behind it. A head on its first
    attempt is not a blocked lane: its lane is only busy."""

    destination: str
    limit: int

    staged = False
    durable = False
    rows = 1

    def run(self, tx: Tx, store: Store) -> list[BlockedLane]:
        lanes = tx.conn.execute(
            _BLOCKED_LANES, (self.destination, LANE_SCAN_MAX, self.limit * LANES_EXAMINED_PER_ROW)
        ).fetchall()
        if not lanes:
            return []
        heads = {
            row[0]: row[1:] for row in tx.conn.execute(_HEADS, (json_list([head for _, _, head in lanes]),)).fetchall()
        }
        out = []
        for lane, events, head in lanes:
            message_id, attempts, due_at, leased = heads[head]
            waiting = leased == 0 and due_at > tx.now  # a retry time (a lease is not a wait)
            if attempts or waiting:
                out.append(BlockedLane(lane, int(events), str(message_id), int(attempts), due_at if waiting else None))
        return out[: self.limit]
