"""Fixtures: a real single nats-server with JetStream, a 3-node cluster, and queues on them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from eventrelay.queue.jetstream import JetStreamQueue

from .natsserver import NatsServer, cluster, single_server, wait_for_jetstream

_streams = itertools.count(1)
QueueFactory = Callable[..., Awaitable[JetStreamQueue]]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = single_server(tmp_path / "nats")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nats_url(nats_server: NatsServer) -> str:
    await wait_for_jetstream([nats_server.url])
    return nats_server.url


@pytest.fixture
async def make_queue(nats_url: str) -> AsyncIterator[QueueFactory]:
    """Start JetStreamQueue instances on one stream (each instance stands for one process)."""
    opened: list[JetStreamQueue] = []
    stream = f"T{next(_streams)}"

    async def make(**kw: object) -> JetStreamQueue:
        args: dict[str, object] = {
            "servers": [nats_url],
            "stream": stream,
            "replicas": 1,
            "max_events": 100_000,
            "dedup_window": 3600.0,
        }
        args.update(kw)
        q = JetStreamQueue(**args)  # type: ignore[arg-type]
        await q.start()
        opened.append(q)
        return q

    yield make
    for q in opened:
        await q.close()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    servers = cluster(tmp_path / "cluster", 3)
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()
