"""The JetStream delivery log: attempts recorded by one process are read from any other."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from eventrelay.core.outcome import Category
from eventrelay.core.records import AttemptRecord, DeliveryStatus
from eventrelay.deliverylog.jetstream import JetStreamDeliveryLog

_streams = itertools.count(1)
LogFactory = Callable[[Path], Awaitable[JetStreamDeliveryLog]]


@pytest.fixture
async def open_log(nats_url: str) -> AsyncIterator[LogFactory]:
    opened: list[JetStreamDeliveryLog] = []
    stream = f"L{next(_streams)}"

    async def make(path: Path) -> JetStreamDeliveryLog:
        log = JetStreamDeliveryLog(servers=[nats_url], stream=stream, replicas=1, path=path)
        await log.start()
        opened.append(log)
        return log

    yield make
    for log in opened:
        await log.close()


def attempt(
    message_id: str, n: int, status: DeliveryStatus, category: Category, *, destination: str = "lambda"
) -> AttemptRecord:
    now = time.time()
    return AttemptRecord(
        message_id=message_id, destination=destination, source="web", call_type="track", attempt=n,
        status=status, category=category, started_at=now - 0.05, latency_ms=50.0, received_at=now - 1.0,
        function="my-fn", qualifier="live", status_code=200, error_type="Unhandled" if n == 1 else None,
        error_message="boom" if category is Category.EXECUTION_ERROR else None,
        event=b'{"type":"track","event":"Order Completed"}', request={"function": "my-fn"},
    )  # fmt: skip


async def test_attempts_recorded_on_one_node_are_read_on_another(open_log: LogFactory, tmp_path: Path) -> None:
    writer = await open_log(tmp_path / "node-a")
    reader = await open_log(tmp_path / "node-b")

    await writer.record([attempt("m1", 1, "retrying", Category.EXECUTION_ERROR)])
    await writer.record(
        [
            attempt("m1", 2, "delivered", Category.DELIVERED),
            attempt("m2", 1, "failed", Category.CONFIGURATION),
        ]
    )

    rows = {r.message_id: r for r in await reader.deliveries(destination="lambda")}
    assert (rows["m1"].status, rows["m1"].attempts, str(rows["m1"].category)) == ("delivered", 2, "delivered")
    assert (rows["m2"].status, str(rows["m2"].category)) == ("failed", "configuration")
    history = await reader.attempts("m1", "lambda")
    assert [(a.attempt, a.category) for a in history] == [
        (1, Category.EXECUTION_ERROR),
        (2, Category.DELIVERED),
    ]
    assert history[0].event == b'{"type":"track","event":"Order Completed"}'
    stats = await reader.stats("lambda", time.time() - 3600, time.time() + 60)
    assert stats is not None


async def test_redrive_mark_reaches_every_node(open_log: LogFactory, tmp_path: Path) -> None:
    a = await open_log(tmp_path / "a")
    b = await open_log(tmp_path / "b")
    await a.record([attempt("m1", 3, "failed", Category.TIMEOUT), attempt("m2", 3, "failed", Category.TIMEOUT)])

    assert await a.redriven("lambda", ["m1"], time.time()) == 1

    statuses = {r.message_id: r.status for r in await b.deliveries(destination="lambda")}
    assert statuses == {"m1": "retrying", "m2": "failed"}


async def test_a_restarted_node_resumes_without_repeating_history(open_log: LogFactory, tmp_path: Path) -> None:
    writer = await open_log(tmp_path / "writer")
    node = await open_log(tmp_path / "node")
    await writer.record([attempt("m1", 1, "retrying", Category.THROTTLED)])
    assert len(await node.attempts("m1")) == 1
    await node.close()

    await writer.record([attempt("m1", 2, "delivered", Category.DELIVERED)])
    node = await open_log(tmp_path / "node")

    assert [a.attempt for a in await node.attempts("m1")] == [1, 2]
    [row] = await node.deliveries()
    assert row.status == "delivered"


async def test_two_processes_sharing_a_data_dir_both_answer(open_log: LogFactory, tmp_path: Path) -> None:
    first = await open_log(tmp_path / "shared")
    second = await open_log(tmp_path / "shared")  # the projection file is taken: a private one is used

    await first.record([attempt("m1", 1, "delivered", Category.DELIVERED)])

    assert [r.message_id for r in await second.deliveries()] == ["m1"]
    assert [a.attempt for a in await second.attempts("m1")] == [1]
    assert [a.attempt for a in await first.attempts("m1")] == [1]
