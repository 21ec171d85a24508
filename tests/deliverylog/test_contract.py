"""The delivery log contract: what delivery records is what the API, CLI and page read back.

Runs against the in-memory fake and the SQLite store, so the fake behaves as the real one.
"""

from __future__ import annotations

import orjson
import pytest

from eventrelay.core.outcome import Category
from eventrelay.deliverylog.base import DeliveryLog
from tests.deliverylog.records import BASE_TIME as T
from tests.deliverylog.records import attempt


async def test_a_delivered_event_is_one_row_with_all_its_attempts(log: DeliveryLog) -> None:
    await log.record([attempt("m1", Category.EXECUTION_ERROR, n=1, at=T)])
    await log.record([attempt("m1", Category.DELIVERED, n=2, at=T + 3, received_at=T - 1)])

    (row,) = await log.deliveries()
    assert (row.message_id, row.destination, row.status, row.category, row.attempts) == (
        "m1",
        "lambda-prod",
        "delivered",
        Category.DELIVERED,
        2,
    )
    assert row.error is None
    assert row.delivered_at == pytest.approx(T + 3.01)
    assert row.to_json()["category"] == "delivered"


async def test_a_retrying_row_shows_the_category_and_error_of_the_latest_attempt(log: DeliveryLog) -> None:
    await log.record([attempt("m1", Category.TIMEOUT, n=1, at=T)])
    await log.record([attempt("m1", Category.EXECUTION_ERROR, n=2, at=T + 2)])

    (row,) = await log.deliveries()
    assert row.status == "retrying"
    assert row.category is Category.EXECUTION_ERROR
    assert row.error == "Exception: boom from handler"
    assert row.next_attempt_at == pytest.approx(T + 4)
    assert row.function == "my-fn"


async def test_deliveries_filter_by_destination_category_status_and_time(log: DeliveryLog) -> None:
    await log.record(
        [
            attempt("a", Category.DELIVERED, at=T),
            attempt("b", Category.EXECUTION_ERROR, status="failed", at=T + 10),
            attempt("c", Category.ACCESS_DENIED, at=T + 20),
            attempt("d", Category.CONFIGURATION, status="discarded", at=T + 30, destination="other"),
        ]
    )

    def ids(rows: list) -> list[str]:  # type: ignore[type-arg]
        return [r.message_id for r in rows]

    assert ids(await log.deliveries()) == ["d", "c", "b", "a"]  # newest first
    assert ids(await log.deliveries(destination="lambda-prod")) == ["c", "b", "a"]
    assert ids(await log.deliveries(category="access_denied")) == ["c"]
    assert ids(await log.deliveries(status="failed")) == ["b"]
    assert ids(await log.deliveries(status="discarded", destination="other")) == ["d"]
    assert ids(await log.deliveries(since=T + 5, until=T + 25)) == ["c", "b"]
    assert ids(await log.deliveries(limit=2)) == ["d", "c"]
    assert await log.deliveries(destination="nowhere") == []


async def test_attempts_keep_what_the_function_said_and_the_event_of_failures(log: DeliveryLog) -> None:
    await log.record([attempt("m1", Category.EXECUTION_ERROR, n=1, at=T, log_tail="boom from handler\nTraceback")])
    await log.record([attempt("m1", Category.DELIVERED, n=2, at=T + 5)])
    await log.record([attempt("m2", Category.DELIVERED, at=T + 5.5)])

    first, second = await log.attempts("m1")
    assert (first.attempt, first.category, second.attempt, second.category) == (
        1,
        Category.EXECUTION_ERROR,
        2,
        Category.DELIVERED,
    )
    assert first.log_tail == "boom from handler\nTraceback"
    assert (first.status_code, first.error_type, first.executed_version) == (200, "Exception", "3")
    assert first.request["client_context"] == {"custom": {"app": "shop"}}
    assert orjson.loads(first.event)["messageId"] == "m1"
    assert orjson.loads(second.event)["messageId"] == "m1"  # a delivered attempt keeps it as a sample,
    [m2] = await log.attempts("m2")
    assert m2.event == b""  # at most one per destination and second (failed attempts always keep theirs)
    assert await log.attempts("m1", destination="other") == []


async def test_an_attempt_in_a_batch_keeps_the_batch_and_the_warning(log: DeliveryLog) -> None:
    failed = attempt("m1", Category.EXECUTION_ERROR, n=1, at=T)
    failed.batch_id, failed.batch_size, failed.batch_bytes = "b7", 100, 65_536
    failed.warning = "batchItemFailures named 1 itemIdentifier(s) not in this batch, ignored: 'x'"
    alone = attempt("m2", Category.EXECUTION_ERROR, n=1, at=T + 1)
    await log.record([failed, alone])

    [kept] = await log.attempts("m1")
    assert (kept.batch_id, kept.batch_size, kept.batch_bytes, kept.warning) == (
        "b7",
        100,
        65_536,
        failed.warning,
    )
    [single] = await log.attempts("m2")
    assert (single.batch_id, single.batch_size, single.batch_bytes, single.warning) == (None, None, None, None)
    samples = {s.message_id: s for s in await log.samples("lambda-prod", "execution_error")}
    assert samples["m1"].batch_id == "b7" and samples["m2"].batch_id is None


async def test_stats_count_events_by_state_in_the_range(log: DeliveryLog) -> None:
    await log.record(
        [
            attempt("d1", Category.DELIVERED, at=T + 1),
            attempt("d2", Category.DELIVERED, at=T + 2),
            attempt("f1", Category.EXECUTION_ERROR, status="failed", at=T + 3),
            attempt("r1", Category.TIMEOUT, at=T + 4),
            attempt("x1", Category.CONFIGURATION, status="discarded", at=T + 5),
            attempt("old", Category.DELIVERED, at=T - 1000),
            attempt("o1", Category.DELIVERED, at=T + 6, destination="other"),
        ]
    )
    stats = await log.stats("lambda-prod", T, T + 600)
    assert stats.counts == {"delivered": 2, "failed": 1, "retrying": 1, "discarded": 1, "filtered": 0}


async def test_a_filtered_event_is_counted_as_filtered_never_as_an_error(log: DeliveryLog) -> None:
    by = 'filters[0]: drop if event = "Order Completed"'
    await log.record([attempt("f1", Category.FILTERED, at=T + 1, filter=by), attempt("d1", at=T + 2)])

    (row,) = await log.deliveries(status="filtered")
    assert (row.message_id, row.category, row.error, row.filter) == ("f1", Category.FILTERED, None, by)
    assert row.to_json()["filter"] == by
    stats = await log.stats("lambda-prod", T, T + 600)
    assert (stats.counts["filtered"], stats.counts["delivered"], stats.counts["failed"]) == (1, 1, 0)
    assert stats.errors == []
    assert sum(b.filtered for b in stats.buckets) == 1 and all(not b.errors for b in stats.buckets)
    assert await log.samples("lambda-prod") == []
    (recorded,) = await log.attempts("f1")
    assert recorded.filter == by


async def test_an_attempt_of_a_replay_carries_the_replay_id(log: DeliveryLog) -> None:
    await log.record([attempt("m1", at=T + 1)])
    await log.record([attempt("m1", n=2, at=T + 5, replay="rp_1")])

    (row,) = await log.deliveries()
    assert (row.replay, row.to_json()["replay"]) == ("rp_1", "rp_1")
    first, second = await log.attempts("m1")
    assert (first.replay, second.replay) == (None, "rp_1")
    await log.record([attempt("m2", Category.FILTERED, at=T + 6, replay="rp_1"), attempt("m3", at=T + 7)])
    counts = await log.replay_counts("rp_1")
    assert (counts["delivered"], counts["filtered"], counts["failed"]) == (1, 1, 0)
    assert sum((await log.replay_counts("rp_other")).values()) == 0


async def test_latency_percentiles_are_nearest_rank_over_delivered_events(log: DeliveryLog) -> None:
    # 100 events delivered k ms after receipt, k = 1..100, recorded in shuffled order.
    order = [(k * 37) % 100 + 1 for k in range(100)]
    await log.record(
        [attempt(f"m{k}", Category.DELIVERED, at=T + k, latency_ms=0.0, received_at=T + k - k / 1000) for k in order]
    )
    await log.record([attempt("slow-but-failed", Category.TIMEOUT, status="failed", at=T + 1, received_at=T - 900)])

    lat = (await log.stats("lambda-prod", T, T + 600)).latency
    assert lat.count == 100
    assert lat.p50_ms == pytest.approx(50, abs=0.01)
    assert lat.p95_ms == pytest.approx(95, abs=0.01)
    assert lat.p99_ms == pytest.approx(99, abs=0.01)
    empty = await log.stats("lambda-prod", T - 10_000, T - 5_000)
    assert (empty.latency.count, empty.latency.p50_ms) == (0, None)


async def test_error_table_counts_failed_attempts_and_events_by_category(log: DeliveryLog) -> None:
    await log.record([attempt("e1", Category.EXECUTION_ERROR, n=1, at=T + 1)])
    await log.record([attempt("e1", Category.EXECUTION_ERROR, n=2, at=T + 3)])
    await log.record([attempt("e2", Category.EXECUTION_ERROR, n=1, at=T + 4)])
    await log.record([attempt("a1", Category.ACCESS_DENIED, n=1, at=T + 5)])
    await log.record([attempt("ok", Category.DELIVERED, n=1, at=T + 6)])

    stats = await log.stats("lambda-prod", T, T + 600)
    table = [(str(e.category), e.attempts, e.events) for e in stats.errors]
    assert table == [("execution_error", 3, 2), ("access_denied", 1, 1)]


async def test_time_series_puts_each_attempt_in_its_bucket(log: DeliveryLog) -> None:
    await log.record(
        [
            attempt("a", Category.DELIVERED, at=T + 1, latency_ms=0.0),
            attempt("b", Category.DELIVERED, at=T + 2, latency_ms=0.0),
            attempt("c", Category.EXECUTION_ERROR, at=T + 305, latency_ms=0.0),
            attempt("d", Category.TIMEOUT, at=T + 599, latency_ms=0.0),
        ]
    )
    stats = await log.stats("lambda-prod", T, T + 600)
    assert stats.bucket_seconds == 10
    assert len(stats.buckets) == 60
    assert stats.buckets[0].delivered == 2
    assert stats.buckets[30].errors == {"execution_error": 1}
    assert stats.buckets[59].errors == {"timeout": 1}
    assert sum(b.delivered + sum(b.errors.values()) for b in stats.buckets) == 4


async def test_samples_are_the_latest_failures_per_category(log: DeliveryLog) -> None:
    await log.record([attempt(f"e{i}", Category.EXECUTION_ERROR, at=T + i, log_tail=f"tail {i}") for i in range(8)])
    await log.record([attempt("t1", Category.TIMEOUT, at=T + 100)])
    await log.record([attempt("ok", Category.DELIVERED, at=T + 200)])

    some = await log.samples("lambda-prod", "execution_error", limit=3)
    assert [s.message_id for s in some] == ["e7", "e6", "e5"]
    assert some[0].log_tail == "tail 7"
    assert orjson.loads(some[0].event)["messageId"] == "e7"

    each = await log.samples("lambda-prod", limit=2)
    assert [s.message_id for s in each] == ["t1", "e7", "e6"]
    assert await log.samples("other") == []


async def test_samples_of_successful_deliveries_are_recent_ones_with_their_event(log: DeliveryLog) -> None:
    await log.record([attempt(f"ok{i}", Category.DELIVERED, at=T + i * 2, log_tail=f"tail {i}") for i in range(4)])
    await log.record([attempt("quick", Category.DELIVERED, at=T + 6.3)])  # 0.3 s after ok3: no sample
    await log.record([attempt("bad", Category.EXECUTION_ERROR, at=T + 7)])

    found = await log.samples("lambda-prod", "delivered", limit=3)

    assert [s.message_id for s in found] == ["ok3", "ok2", "ok1"]
    assert orjson.loads(found[0].event)["messageId"] == "ok3" and found[0].log_tail == "tail 3"
    assert [s.message_id for s in await log.samples("lambda-prod")] == ["bad"]  # failures only by default


async def test_redriven_marks_failed_and_discarded_rows_as_retrying_and_retrying_ones_due(log: DeliveryLog) -> None:
    await log.record(
        [
            attempt("f1", Category.EXECUTION_ERROR, status="failed", at=T),
            attempt("f2", Category.EXECUTION_ERROR, status="failed", at=T + 1),
            attempt("x1", Category.CONFIGURATION, status="discarded", at=T + 2),
            attempt("ok", Category.DELIVERED, at=T + 3),
            attempt("f3", Category.TIMEOUT, status="failed", at=T + 4, destination="other"),
        ]
    )
    assert await log.redriven("lambda-prod", ["f2", "ok", "f3"], at=T + 10) == 1
    assert [r.message_id for r in await log.deliveries(status="retrying")] == ["f2"]
    assert await log.redriven("lambda-prod", None, at=T + 20) == 3  # f1 and x1, and f2 (retrying) due again
    assert {r.message_id: r.next_attempt_at for r in await log.deliveries(status="retrying")} == dict.fromkeys(
        ["f1", "f2", "x1"], T + 20
    )
    statuses = {r.message_id: r.status for r in await log.deliveries()}
    assert statuses == {
        "f1": "retrying",
        "f2": "retrying",
        "x1": "retrying",
        "ok": "delivered",
        "f3": "failed",
    }
    (x1,) = [r for r in await log.deliveries() if r.message_id == "x1"]
    assert x1.category is Category.CONFIGURATION  # still says why it failed until the next attempt
