"""The SQLite delivery log's file: connection settings, tables and the statements that write them.

``attempts``: one row per attempt (the history, samples and error counts). ``deliveries``: one
row per (event, destination), the latest state (what ``deliveries()`` lists and latency reads).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eventrelay.storage import sqlite

BUSY_TIMEOUT_MS = 10_000  # another process (the CLI) may hold the write lock briefly
CACHE_KIB = 16_384  # page cache per connection (KiB): big group commits stay in memory; RSS stays small

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL, destination TEXT NOT NULL, source TEXT NOT NULL, call_type TEXT NOT NULL,
    attempt INTEGER NOT NULL, status TEXT NOT NULL, category TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL NOT NULL, latency_ms REAL NOT NULL, received_at REAL NOT NULL,
    function TEXT, qualifier TEXT, invocation_type TEXT, status_code INTEGER, error_type TEXT,
    error_message TEXT, log_tail TEXT, executed_version TEXT, request TEXT, response_body TEXT,
    event BLOB, next_attempt_at REAL,
    batch_id TEXT, batch_size INTEGER, batch_bytes INTEGER, warning TEXT, filter TEXT, replay TEXT
);
CREATE INDEX IF NOT EXISTS attempts_message ON attempts(message_id, destination);
-- covering indexes: the stats queries read only the index, never the wide attempt rows
CREATE INDEX IF NOT EXISTS attempts_series ON attempts(destination, finished_at, category);
CREATE INDEX IF NOT EXISTS attempts_errors ON attempts(destination, category, finished_at, message_id);
CREATE INDEX IF NOT EXISTS attempts_with_body ON attempts(id) WHERE event IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    message_id TEXT NOT NULL, destination TEXT NOT NULL, source TEXT NOT NULL, call_type TEXT NOT NULL,
    function TEXT, category TEXT NOT NULL, attempts INTEGER NOT NULL, status TEXT NOT NULL, error TEXT,
    received_at REAL NOT NULL, updated_at REAL NOT NULL, delivered_at REAL, next_attempt_at REAL,
    filter TEXT, replay TEXT,
    PRIMARY KEY (message_id, destination)
) WITHOUT ROWID;
-- covering the latency query (attempts: first-attempt latency); replaces deliveries_latency
DROP INDEX IF EXISTS deliveries_latency;
CREATE INDEX IF NOT EXISTS deliveries_latency_attempts
    ON deliveries(destination, status, updated_at, received_at, delivered_at, attempts);
CREATE INDEX IF NOT EXISTS deliveries_dest_time ON deliveries(destination, updated_at);
CREATE INDEX IF NOT EXISTS deliveries_time ON deliveries(updated_at);
"""
# Columns added after the first layout, each ``ALTER TABLE ... ADD COLUMN`` on a file that lacks it
# (``add_columns``: instant in SQLite, NULL in the rows already there: no batch, no filter, no replay).
ADDED_COLUMNS = (
    ("attempts", "batch_id TEXT"),
    ("attempts", "batch_size INTEGER"),
    ("attempts", "batch_bytes INTEGER"),
    ("attempts", "warning TEXT"),
    ("attempts", "filter TEXT"),
    ("attempts", "replay TEXT"),
    ("deliveries", "filter TEXT"),
    ("deliveries", "replay TEXT"),
)
# The deliveries of one replay (the replay's counts), indexed only where there is one.
REPLAY_INDEX = "CREATE INDEX IF NOT EXISTS deliveries_replay ON deliveries(replay, status) WHERE replay IS NOT NULL"

ATTEMPT_COLUMNS = (
    "message_id, destination, source, call_type, attempt, status, category, started_at, finished_at, "
    "latency_ms, received_at, function, qualifier, invocation_type, status_code, error_type, error_message, "
    "log_tail, executed_version, request, response_body, event, next_attempt_at, "
    "batch_id, batch_size, batch_bytes, warning, filter, replay"
)
INSERT_ATTEMPT = f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 29)})"
UPSERT_DELIVERY = """
INSERT INTO deliveries (message_id, destination, source, call_type, function, category, attempts, status,
                        error, received_at, updated_at, delivered_at, next_attempt_at, filter, replay)
VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (message_id, destination) DO UPDATE SET
    source = excluded.source, call_type = excluded.call_type, function = excluded.function,
    category = excluded.category, attempts = deliveries.attempts + 1, status = excluded.status,
    error = excluded.error, received_at = excluded.received_at, updated_at = excluded.updated_at,
    delivered_at = excluded.delivered_at, next_attempt_at = excluded.next_attempt_at,
    filter = excluded.filter, replay = excluded.replay
"""
DELIVERY_COLUMNS = (
    "message_id, destination, source, call_type, function, category, attempts, status, error, "
    "received_at, updated_at, next_attempt_at, delivered_at, filter, replay"
)


def add_columns(conn: sqlite3.Connection) -> None:
    """Give a file of an earlier layout the columns added since (``ADDED_COLUMNS``), then the
    indexes on them."""
    for table, column in ADDED_COLUMNS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column.split()[0] not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    conn.execute(REPLAY_INDEX)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the log's file. ``synchronous=NORMAL``: see the package doc."""
    return sqlite.connect(path, synchronous="NORMAL", busy_timeout_ms=BUSY_TIMEOUT_MS, cache_kib=CACHE_KIB)
