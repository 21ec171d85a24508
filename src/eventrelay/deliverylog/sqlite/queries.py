"""The SQLite delivery log's read queries (run on its reader thread)."""

from __future__ import annotations

import sqlite3
from typing import Any

from eventrelay.core.outcome import NOT_FAILURES, Category
from eventrelay.deliverylog.base import ErrorCount, Stats
from eventrelay.deliverylog.stats import (
    STATUSES,
    add_to_bucket,
    bucket_width,
    empty_buckets,
    latencies_of,
    sort_errors,
)

# Percentiles are computed over at most the latest this many deliveries of the range: exact below it,
# a recent sample of 200k above it (a 7-day range of a busy destination stays a sub-second query).
MAX_LATENCY_SAMPLE = 200_000
FAILURE_CATEGORIES = tuple(str(c) for c in Category if c not in NOT_FAILURES)


def conditions(**filters: str | None) -> tuple[list[str], list[Any]]:
    """``column = ?`` conditions and their arguments for the filters that are set."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in filters.items():
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    return where, args


def stats(conn: sqlite3.Connection, destination: str, since: float, until: float) -> Stats:
    """Counts, latency percentiles, error table and time series of ``destination`` in the range."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in conn.execute(
        "SELECT status, COUNT(*) FROM deliveries WHERE destination = ? AND updated_at BETWEEN ? AND ? GROUP BY status",
        (destination, since, until),
    ):
        counts[status] = n
    total, first = latencies_of(
        conn.execute(
            "SELECT (delivered_at - received_at) * 1000.0, attempts FROM deliveries WHERE destination = ? "
            "AND status = 'delivered' AND updated_at BETWEEN ? AND ? ORDER BY updated_at DESC LIMIT ?",
            (destination, since, until, MAX_LATENCY_SAMPLE),
        )
    )
    errors = sort_errors(
        ErrorCount(Category(cat), n, events)
        for cat, n, events in conn.execute(
            "SELECT category, COUNT(*), COUNT(DISTINCT message_id) FROM attempts WHERE destination = ? "
            f"AND category IN ({', '.join('?' * len(FAILURE_CATEGORIES))}) AND finished_at BETWEEN ? AND ? "
            "GROUP BY category",
            (destination, *FAILURE_CATEGORIES, since, until),
        )
    )
    width = bucket_width(since, until)
    buckets = empty_buckets(since, width)
    for index, category, n in conn.execute(
        "SELECT MIN(CAST((finished_at - ?) / ? AS INTEGER), ?), category, COUNT(*) FROM attempts "
        "WHERE destination = ? AND finished_at BETWEEN ? AND ? GROUP BY 1, 2",
        (since, width, len(buckets) - 1, destination, since, until),
    ):
        add_to_bucket(buckets, int(index), category, n)
    return Stats(destination, since, until, counts, total, errors, buckets, width, first)
