"""The SQLite queue's file: connection settings and tables.

Tables (two b-trees and one index written per accepted event, the least that keeps a claim an
index range scan and dedup a key lookup):

- ``jobs``: one row per (event, destination), carrying the event itself (source, call type,
  receive time, body) inline, so an append is one row and a claim reads one row. An event routed
  to N destinations is stored N times: fan-out is rare and small, and in exchange an ack is one
  DELETE with no reference counting. ``state`` is ``ready`` (waiting, due at ``due_at``) or
  ``dead`` (dead-lettered, kept for redrive). A claim pushes ``due_at`` to the lease's end, so
  "due" and "not leased" are one indexed condition: ``due_at <= now``; ``leased`` (0/1) says
  which future ``due_at`` is a lease (released at start) rather than a retry time. A claim
  leaves the row's size unchanged (0 and 1 take no bytes in a SQLite record, a time is always
  8), so SQLite overwrites it in place. The small, often rewritten columns come first and the
  body last. ``redriven_at`` is when an operator last re-drove the job (NULL: never): the retry
  window runs from it. It is a column of its own rather than a reuse of ``first_attempt_at``
  (the first attempt's time, NULL until one fails) or ``received_at`` (the event's receipt,
  which the delivery log and latency figures must keep): each keeps one meaning. NULL costs
  one byte per row, and only a redrive writes it. ``batch`` is the key of the whole batch a job
  is retried with (``Job.batch``; NULL, one byte, for every job not retried as part of a batch).
- ``ready_counts``: waiting (ready) jobs per destination, kept by every transaction, so the
  ``max_events`` bound and ``depth`` are O(1) for every process writing the file.
- ``dedup``: messageIds seen within the dedup window, ``WITHOUT ROWID`` so the key is the table
  (one b-tree, not a table plus an index). Expiry walks the key space in bounded slices.
- ``archive``: every accepted event once, in receipt order (``seq``), kept after delivery for
  replay (``archive_store.py``), written in the append's own commit; ``archive_meta`` (one row)
  counts its events and bytes so the size is known without a scan. ``replays``: each replay's
  window and cursor; a replay's jobs carry its id in ``jobs.replay`` (NULL for live traffic: one
  byte, and only replay jobs are in the ``jobs_replay`` index).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eventrelay.storage import sqlite

# One connection per process writes (several processes with ``serve --workers``, see __init__.py). WAL
# and synchronous=FULL (fsync the WAL at commit: survives power loss) come with the connection;
# the writer lowers synchronous to NORMAL for transactions with no append (see ops.Op.durable).
BUSY_TIMEOUT_MS = 5_000  # another process (a CLI) holding the lock briefly is waited for, 5 s
CACHE_KIB = 16_000  # 16 MB page cache: the claim index and recent pages stay hot
CACHED_STATEMENTS = 512  # every statement the writer runs stays prepared (IN lists of a few sizes)
# Checkpoint every 4,096 pages (16 MB) instead of 1,000: a job is usually written, claimed and
# deleted within that span, so its page reaches the database file once, not three times.
WAL_PAGES = 4096
WAL_BYTES = WAL_PAGES * 4096  # the WAL's usual bound; smaller when the disk is nearly full (storage/space.py)
PRAGMAS = (
    "PRAGMA temp_store=MEMORY",
    f"PRAGMA wal_autocheckpoint={WAL_PAGES}",
    # after a checkpoint the WAL file is cut back to its usual bound: a burst that grew it does
    # not keep its disk space (a WAL is reused from its start, never shrunk, without this)
    f"PRAGMA journal_size_limit={WAL_BYTES}",
)

ARCHIVE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS archive (
        seq INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        message_id TEXT NOT NULL,
        source TEXT NOT NULL,
        call_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        body BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS archive_time ON archive (received_at)",
    """CREATE TABLE IF NOT EXISTS archive_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        events INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        pruned_until REAL
    )""",
    "INSERT OR IGNORE INTO archive_meta (id, events, bytes) VALUES (1, 0, 0)",
    """CREATE TABLE IF NOT EXISTS replays (
        id TEXT PRIMARY KEY,
        destination TEXT NOT NULL,
        since REAL NOT NULL,
        until REAL NOT NULL,
        source TEXT,
        call_type TEXT,
        event TEXT,
        condition TEXT,
        max_waiting INTEGER NOT NULL,
        first_seq INTEGER,
        last_seq INTEGER,
        matched INTEGER NOT NULL,
        cursor INTEGER NOT NULL,
        enqueued INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        finished_at REAL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS jobs_replay ON jobs (replay, state) WHERE replay IS NOT NULL",
)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id INTEGER PRIMARY KEY,
        destination TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'ready',
        due_at REAL NOT NULL,
        leased INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_attempt_at REAL,
        redriven_at REAL,
        batch TEXT,
        message_id TEXT NOT NULL,
        source TEXT NOT NULL,
        call_type TEXT NOT NULL,
        received_at REAL NOT NULL,
        dead_status TEXT,
        reason TEXT,
        body BLOB NOT NULL,
        replay TEXT,
        lane TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (destination, state, due_at)",
    "CREATE TABLE IF NOT EXISTS dedup (message_id TEXT PRIMARY KEY, seen_at REAL NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ready_counts (destination TEXT PRIMARY KEY, ready INTEGER NOT NULL) WITHOUT ROWID",
    *ARCHIVE_SCHEMA,
)

# Waiting jobs by lane, oldest first: finds a lane's head and the jobs behind it. Partial: only
# jobs of ordered destinations have a lane, so other appends write no entry here; and a claim or
# a retry (due_at, leased) does not touch it.
LANE_INDEX = (
    "CREATE INDEX IF NOT EXISTS jobs_lane ON jobs (destination, lane, id) WHERE lane IS NOT NULL AND state = 'ready'"
)

# PRAGMA user_version of files with the tables above. 0 with tables present: the first layout
# (events + jobs + dedup); 2: jobs without ``redriven_at``: refused clearly (no migration before
# the first release). 3: jobs without ``batch``; 4: before the archive (no ``jobs.replay``; the
# archive tables are created by SCHEMA and start empty); 5: jobs without ``lane`` (per-user
# ordering; a job without a lane keeps no order, as one appended before ordering was on): all
# migrated in place (``MIGRATIONS``).
SCHEMA_VERSION = 6
# from layout -> the column that layout lacks (added in place, instant; NULL in the rows already there)
MIGRATIONS = {3: ("batch", "TEXT"), 4: ("replay", "TEXT"), 5: ("lane", "TEXT")}


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the queue database with the settings and tables above."""
    conn = sqlite.connect(
        path,
        synchronous="FULL",
        busy_timeout_ms=BUSY_TIMEOUT_MS,
        cache_kib=CACHE_KIB,
        pragmas=PRAGMAS,
        cached_statements=CACHED_STATEMENTS,
    )
    try:
        version = _check_version(conn)
        for statement in SCHEMA:  # no write when the table or index exists
            conn.execute(statement)
        conn.execute(LANE_INDEX)
        if version != SCHEMA_VERSION:  # a new file: an existing one is not written (it may be on a full disk)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_version(conn: sqlite3.Connection) -> int:
    """The file's layout version (0: a new file); refuses one of another layout."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = conn.execute("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'").fetchone()[0]
    while tables and version in MIGRATIONS:
        column, kind = MIGRATIONS[version]
        if column not in {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        version += 1
        conn.execute(f"PRAGMA user_version = {version}")
    if tables and version != SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"the file has queue layout {version}, this eventrelay uses {SCHEMA_VERSION};"
            " move the file away to start with an empty queue"
        )
    return version
