"""Direct hand-off: events appended by ingest go to the delivery workers without a claim.

Without it, an accepted event waits for the append's commit, then for a worker to be woken, to
run a claim (a second write transaction, queued behind whatever the writer is committing) and
to read the job back. With it (SQLite queue, ``serve --role all``), ingest first reserves room
in the workers of the event's destinations; the append writes as many of the new jobs as were
reserved already leased to those workers and returns them; the workers start them when the
append commits. The guarantees are a claim's: the jobs are in the database, leased (a crash
releases them at the next start; a lapsed lease makes them due again), and settled by id.
Room not used (duplicates, a failed append) is given back at once.

    reservation = engine.reserve(wanted)                 # None: nothing to hand to
    fresh, jobs = await queue.append_handoff(items, reservation.offers)
    covered = reservation.hand_over(jobs)                # or reservation.cancel() on failure
    engine.notify(set(wanted) - covered)                 # the rest is claimed as before
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from eventrelay.core.records import Accepted, Job
from eventrelay.queue.base import HandoffQueue

if TYPE_CHECKING:
    from eventrelay.delivery.engine import DeliveryEngine
    from eventrelay.delivery.worker import DestinationWorker


class Reservation:
    """Room reserved in some workers for one append: ``offers`` is what the queue needs
    (destination -> (jobs at most, lease seconds))."""

    __slots__ = ("_settled", "_wanted", "_workers", "offers")

    def __init__(self, workers: dict[str, tuple[DestinationWorker, int]], wanted: Mapping[str, int]) -> None:
        self._workers = workers
        self._wanted = wanted
        self.offers = {name: (count, worker.lease_seconds) for name, (worker, count) in workers.items()}
        self._settled = False

    def hand_over(self, jobs: Iterable[Job]) -> set[str]:
        """Start ``jobs`` in their workers and give back the room not used. Returns the
        destinations whose reserved room took every new job (they need no claim)."""
        if self._settled:
            return set()
        self._settled = True
        taken: dict[str, list[Job]] = {}
        for job in jobs:
            taken.setdefault(job.destination, []).append(job)
        covered = set()
        for name, (worker, count) in self._workers.items():
            mine = taken.get(name, [])
            worker.take(mine, reserved=count)
            if len(mine) < count or count >= self._wanted.get(name, 0):  # every new job of it was handed
                covered.add(name)
        return covered

    def cancel(self) -> None:
        """The append failed: give every reserved slot back."""
        self.hand_over(())


def append_with_handoff(
    queue: HandoffQueue,
    engine: DeliveryEngine,
    items: Sequence[Accepted],
    wanted: Mapping[str, int],
    covered: set[str],
) -> asyncio.Future[list[bool]] | None:
    """Append ``items`` handing new jobs to the workers that have room: a future of the fresh
    flags, after which ``covered`` holds the destinations whose new jobs were all handed over
    (they need no claim); None when no worker has room: append the ordinary way."""
    reservation = engine.reserve(wanted)
    if reservation is None:
        return None
    try:
        inner = queue.append_handoff(items, reservation.offers)
    except BaseException:
        reservation.cancel()
        raise
    outer: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()

    def done(future: asyncio.Future[tuple[list[bool], list[Job]]]) -> None:
        if future.cancelled():
            reservation.cancel()
            outer.cancel()
            return
        error = future.exception()
        if error is not None:
            reservation.cancel()
            if not outer.done():
                outer.set_exception(error)
            return
        fresh, jobs = future.result()
        covered.update(reservation.hand_over(jobs))  # even if the caller stopped waiting: the jobs are leased
        if not outer.done():
            outer.set_result(fresh)

    inner.add_done_callback(done)
    return outer
