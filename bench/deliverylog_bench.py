"""Delivery log throughput and query latency (SQLite store) vs raw SQLite in the same run.

    /work/venv/bin/python bench/deliverylog_bench.py [--records 100000] [--batch 100]

Prints: records/s through SQLiteDeliveryLog.record() with concurrent callers (as the delivery
settler calls it), the ceiling (the same INSERT + UPSERT statements, one thread, raw sqlite3,
1000 rows per commit, synchronous=NORMAL), their ratio, and the latency of stats() / samples() /
deliveries() over the written rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from eventrelay.core.outcome import Category
from eventrelay.core.records import AttemptRecord
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
from eventrelay.deliverylog.sqlite.rows import attempt_row, delivery_row
from eventrelay.deliverylog.sqlite.schema import INSERT_ATTEMPT, SCHEMA, UPSERT_DELIVERY

CATEGORIES = [Category.DELIVERED] * 8 + [Category.EXECUTION_ERROR, Category.TIMEOUT]


def make(i: int, now: float) -> AttemptRecord:
    cat = CATEGORIES[i % len(CATEGORIES)]
    return AttemptRecord(
        message_id=f"m{i:09d}",
        destination=f"d{i % 4}",
        source="web",
        call_type="track",
        attempt=1,
        status="delivered" if cat is Category.DELIVERED else "retrying",
        category=cat,
        started_at=now - 3000 + i * 0.01,
        latency_ms=12.0,
        received_at=now - 3001 + i * 0.01,
        function="fn",
        qualifier="live",
        invocation_type="RequestResponse",
        status_code=200,
        error_type=None if cat is Category.DELIVERED else "Exception",
        error_message=None if cat is Category.DELIVERED else "boom",
        log_tail="START\nEND\n" * 5,
        request={"function": "fn", "qualifier": "live"},
        event=b'{"type":"track","event":"E","userId":"u"}' * 4,
    )


async def through_log(path: Path, records: list[AttemptRecord], batch: int) -> float:
    log = SQLiteDeliveryLog(path)
    await log.start()
    chunks = [records[i : i + batch] for i in range(0, len(records), batch)]
    sem = asyncio.Semaphore(64)  # concurrent callers

    async def one(chunk: list[AttemptRecord]) -> None:
        async with sem:
            await log.record(chunk)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in chunks))
    elapsed = time.perf_counter() - t0
    now = time.time()
    for name, call in (
        ("stats(1h)", lambda: log.stats("d0", now - 3600, now)),
        ("stats(7d)", lambda: log.stats("d0", now - 7 * 86400, now)),
        ("samples()", lambda: log.samples("d0", None, 3)),
        (
            "deliveries(status=retrying, limit=100)",
            lambda: log.deliveries(destination="d1", status="retrying"),
        ),
    ):
        q0 = time.perf_counter()
        await call()
        print(f"  {name}: {(time.perf_counter() - q0) * 1000:.1f} ms over {len(records)} attempts")
    await log.close()
    return elapsed


def raw(path: Path, records: list[AttemptRecord]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    conn.executescript(SCHEMA)
    t0 = time.perf_counter()
    for i in range(0, len(records), 1000):
        chunk = records[i : i + 1000]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_ATTEMPT, [attempt_row(a) for a in chunk])
        conn.executemany(UPSERT_DELIVERY, [delivery_row(a) for a in chunk])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    now = time.time()
    records = [make(i, now) for i in range(args.records)]
    with tempfile.TemporaryDirectory() as tmp:
        ceiling = raw(Path(tmp) / "raw.db", records)
        print(f"ceiling (raw sqlite3, 1000 rows/commit): {args.records / ceiling:,.0f} records/s")
        ours = asyncio.run(through_log(Path(tmp) / "log.db", records, args.batch))
        rate = args.records / ours
        print(f"SQLiteDeliveryLog.record ({args.batch}/call, 64 callers): {rate:,.0f} records/s")
        print(f"ratio: {ceiling / ours:.0%} of the ceiling's records/s")


if __name__ == "__main__":
    main()
