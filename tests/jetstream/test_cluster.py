"""A 3-node JetStream cluster (R3) keeps every acknowledged event when a node is killed under load,
and the delivery side (an R3 consumer) goes on to deliver every one of them."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import nats

from eventrelay.core.errors import StorageError
from eventrelay.core.records import Accepted
from eventrelay.queue.jetstream import JetStreamQueue

from .natsserver import NatsServer, wait_for_jetstream

BATCH = 20  # events per append, as a Segment client's batch
PUBLISHERS = 3
LOAD_BEFORE_KILL = 2.0  # seconds of load before the SIGKILL
AFTER_KILL = 1000  # events acknowledged after the kill (a new leader took over) before the load stops
RECOVERY_DEADLINE = 60.0  # seconds allowed for that on a loaded machine
LEASE = 5.0  # AckWait of the test's consumer: a claim lost in the failover returns after it
DRAIN_DEADLINE = 90.0


def _event(n: int) -> Accepted:
    mid = f"{n}-{uuid.uuid4()}"
    body = b'{"type":"track","event":"Order Completed","messageId":"%s"}' % mid.encode()
    return Accepted(mid, "web", "track", time.time(), body, ("lambda",))


class Load:
    """What the publishers share: acknowledged ids, failures, and when to stop."""

    def __init__(self) -> None:
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.target = 10**12  # stop once this many are acknowledged (set after the kill)
        self.stop = asyncio.Event()

    def add(self, ids: list[str]) -> None:
        self.acked.extend(ids)
        if len(self.acked) >= self.target:
            self.stop.set()


async def _publisher(queue: JetStreamQueue, load: Load) -> None:
    """Appends batches until told to stop; a batch that fails is sent again (same messageIds),
    as a client does after a non-200; only batches whose append returned count as acknowledged."""
    stop, errors = load.stop, load.errors
    n = 0
    while not stop.is_set():
        batch = [_event(n + i) for i in range(BATCH)]
        n += BATCH
        while True:
            try:
                await queue.append(batch)
                load.add([e.message_id for e in batch])
                break
            except StorageError as exc:
                errors.append(str(exc))
                if stop.is_set() and len(errors) > 1000:
                    return
                await asyncio.sleep(0.1)


async def _deliverer(queue: JetStreamQueue, delivered: list[str], stop: asyncio.Event) -> None:
    """A delivery process on the same cluster: claim, note, ack; failures are retried."""
    while not stop.is_set():
        try:
            jobs = await queue.claim("lambda", 100, LEASE)
            for job in jobs:
                # noted before the ack, as the engine records an attempt before it settles: an ack
                # applied by the server whose confirmation was lost in the leader change (a
                # StorageError here) must still count the event as reached
                delivered.append(job.message_id)
                await queue.ack(job)
        except StorageError:
            jobs = []
        if not jobs:
            await asyncio.sleep(0.05)


async def _stream_leader(urls: list[str], stream: str) -> str:
    nc = await nats.connect(servers=urls)
    try:
        info = await nc.jetstream().stream_info(stream)
        assert info.cluster is not None and info.cluster.leader
        return info.cluster.leader
    finally:
        await nc.close()


async def _message_ids_in_stream(urls: list[str], stream: str) -> list[str]:
    """Every Er-Message-Id stored in the work stream, read with an ephemeral ordered consumer."""
    nc = await nats.connect(servers=urls)
    try:
        js = nc.jetstream(timeout=10)
        info = await js.stream_info(stream)
        total = info.state.messages
        sub = await js.subscribe(f"{stream}.job.>", ordered_consumer=True)
        ids: list[str] = []
        deadline = time.monotonic() + 60
        while len(ids) < total and time.monotonic() < deadline:
            msg = await sub.next_msg(timeout=10)
            ids.append((msg.headers or {})["Er-Message-Id"])
        await sub.unsubscribe()
        return ids
    finally:
        await nc.close()


async def test_r3_cluster_keeps_every_acknowledged_event_when_the_leader_is_killed(
    nats_cluster: list[NatsServer],
) -> None:
    urls = [s.url for s in nats_cluster]
    await wait_for_jetstream(urls)
    queues = []
    for i in range(PUBLISHERS):  # each queue is one ingest process, connected to a different node first
        q = JetStreamQueue(urls[i:] + urls[:i], "CL", replicas=3, max_events=10_000_000, dedup_window=600)
        await q.start()
        queues.append(q)
    delivery = JetStreamQueue(urls[1:] + urls[:1], "CL", replicas=3, max_events=10_000_000, dedup_window=600)
    await delivery.start()
    queues.append(delivery)
    load = Load()
    delivered: list[str] = []
    stop_delivery = asyncio.Event()
    tasks = [asyncio.create_task(_publisher(q, load)) for q in queues[:PUBLISHERS]]
    deliverer = asyncio.create_task(_deliverer(delivery, delivered, stop_delivery))
    try:
        await asyncio.sleep(LOAD_BEFORE_KILL)
        leader = await _stream_leader(urls, "CL")
        before_kill = len(load.acked)
        load.target = before_kill + AFTER_KILL
        next(s for s in nats_cluster if s.name == leader).kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(load.stop.wait(), RECOVERY_DEADLINE)
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        deadline = time.monotonic() + DRAIN_DEADLINE  # the delivery process drains what is left
        while not set(load.acked) <= set(delivered) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    finally:
        load.stop.set()
        stop_delivery.set()
        await deliverer
        for q in queues:
            await q.close()

    survivors = [s.url for s in nats_cluster if s.name != leader]
    stored = await _message_ids_in_stream(survivors, "CL")
    acked = load.acked
    missing = set(acked) - set(stored)
    print(
        f"acked {len(acked)} (before kill {before_kill}), stored {len(stored)}, failed appends "
        f"{len(load.errors)}, delivered {len(delivered)} ({len(delivered) - len(set(delivered))} twice)"
    )
    assert before_kill > 0 and len(acked) >= before_kill + AFTER_KILL, "load ran before and after the kill"
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events lost"
    assert len(stored) == len(set(stored)), "a resent batch was stored twice"
    undelivered = set(acked) - set(delivered)
    assert not undelivered, f"{len(undelivered)} acknowledged events never reached the delivery process"
