"""JetStream replays beyond the shared archive tests (tests/queue/test_archive.py): a replay's
step is jobs first, then the cursor by compare-and-set, so a step done again (after a crash
between the two, or by a second delivery process running the same replay) enqueues nothing
twice, and a step that ran into a cancel takes its jobs back."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from eventrelay.core.errors import StorageError
from eventrelay.core.records import Accepted
from eventrelay.queue.archive import ArchivedEvent, ArchiveLimits, ReplayRecord, Window
from eventrelay.queue.jetstream import JetStreamQueue

from .conftest import QueueFactory

LIMITS = ArchiveLimits(86400.0, 10**7)  # JetStream reserves max_bytes per stream: small
ALL = Window(0.0, 1e12)
BODY = b'{"type":"track","event":"Order Completed"}'


def record(first: int, last: int) -> ReplayRecord:
    return ReplayRecord(
        id="rp_js", destination="late", window=ALL, event=None, where=None, limit=100, first_seq=first,
        last_seq=last, matched=last - first + 1, cursor=first - 1, enqueued=0, skipped=0, state="running",
        created_at=time.time(),
    )  # fmt: skip


async def archived(queue: JetStreamQueue, count: int) -> tuple[ReplayRecord, list[int]]:
    await queue.append([Accepted(f"m{i}", "web", "track", time.time(), BODY, ()) for i in range(count)])
    span = await queue.archive_span(ALL)
    assert span.first_seq is not None and span.last_seq is not None and span.events == count
    await queue.create_replay(record(span.first_seq, span.last_seq))
    return record(span.first_seq, span.last_seq), [e.seq for e in await queue.archived(ALL, 0, span.last_seq, count)]


async def test_a_step_done_again_after_a_crash_between_its_jobs_and_its_cursor_enqueues_nothing_twice(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed, restarted = await make_queue(archive=LIMITS), await make_queue(archive=LIMITS)
    replay, seqs = await archived(crashed, 20)

    async def dies(*args: object) -> bool:
        raise StorageError("the process died here: jobs published, cursor not moved")

    monkeypatch.setattr(crashed._replays, "_swap", dies)
    with pytest.raises(StorageError):
        await crashed.enqueue_replay(replay.id, replay.cursor, seqs[-1], seqs, 0)
    assert await crashed.depth("late") == 20

    assert await restarted.enqueue_replay(replay.id, replay.cursor, seqs[-1], seqs, 0)  # the same step again
    assert await restarted.depth("late") == 20  # the work stream's duplicate window dropped the repeats
    jobs = await restarted.claim("late", 100, 30.0)
    assert sorted(j.message_id for j in jobs) == sorted(f"m{i}" for i in range(20))
    now = await restarted.replay(replay.id)
    assert now is not None and (now.cursor, now.enqueued) == (seqs[-1], 20)


async def test_two_processes_running_one_replay_move_its_cursor_once(make_queue: QueueFactory) -> None:
    one, two = await make_queue(archive=LIMITS), await make_queue(archive=LIMITS)
    replay, seqs = await archived(one, 10)
    assert await one.enqueue_replay(replay.id, replay.cursor, seqs[4], seqs[:5], 0)
    assert not await two.enqueue_replay(replay.id, replay.cursor, seqs[4], seqs[:5], 0)  # read the old cursor
    assert await two.enqueue_replay(replay.id, seqs[4], seqs[-1], seqs[5:], 0)
    assert await one.depth("late") == 10 and await one.replay_waiting(replay.id) == 10
    now = await one.replay(replay.id)
    assert now is not None and now.enqueued == 10


async def test_a_step_that_published_while_its_replay_was_cancelled_takes_its_jobs_back(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stepping, cancelling = await make_queue(archive=LIMITS), await make_queue(archive=LIMITS)
    replay, seqs = await archived(stepping, 8)
    events = stepping._archive.events

    async def cancelled_meanwhile(wanted: Sequence[int]) -> list[ArchivedEvent]:
        await cancelling.end_replay(replay.id, "cancelled")  # between the step's read and its publishes
        return await events(wanted)

    monkeypatch.setattr(stepping._archive, "events", cancelled_meanwhile)
    assert not await stepping.enqueue_replay(replay.id, replay.cursor, seqs[-1], seqs, 0)
    assert await stepping.depth("late") == 0 and await stepping.replay_waiting(replay.id) == 0
    now = await stepping.replay(replay.id)
    assert now is not None and (now.state, now.enqueued) == ("cancelled", 0)


async def test_the_archive_is_a_stream_of_its_own_limits_and_is_brought_to_new_ones(
    make_queue: QueueFactory, nats_url: str
) -> None:
    import nats

    queue = await make_queue(archive=ArchiveLimits(3600.0, 5 * 10**6))
    await queue.close()
    await make_queue(archive=ArchiveLimits(7200.0, 2 * 10**6))  # another start with other settings
    nc = await nats.connect(nats_url)
    try:
        archive = (await nc.jetstream().stream_info(queue.names.archive_stream)).config
        work = (await nc.jetstream().stream_info(queue.names.stream)).config
    finally:
        await nc.close()
    assert (archive.max_age, archive.max_bytes, archive.discard) == (7200.0, 2 * 10**6, "old")
    assert (work.discard, work.max_bytes) == ("new", -1)  # a full archive never drops a waiting job
