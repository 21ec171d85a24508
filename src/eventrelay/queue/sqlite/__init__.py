"""The embedded durable queue: one SQLite file (WAL, synchronous=FULL) with group commit.

Every call becomes an operation (``ops.py``) for the file's one writer thread
(``storage/sqlite_writer.py``), which runs the calls of many requests and workers in one
transaction and commits once.

Guarantees and limits:

- ``append`` returns only after its transaction committed with ``synchronous=FULL``: an event
  acknowledged to a client survives kill -9 and power loss.
- Claims, acks, retries and dead letters commit without their own fsync (``synchronous=NORMAL``
  for a transaction with no append): they survive kill -9, and the next append's fsync makes
  them durable; a power loss in between can replay them (an event delivered twice, never lost).
- Single process: the counters that make ``depth`` and the ``max_events`` check O(1) live in
  memory (read from the file at ``start``), and ``start`` releases every lease (a crashed
  predecessor's claimed jobs are due at once). Do not run two eventrelay processes on one file.
- A claim moves a job's ``due_at`` to the end of its lease, so a claim is one range scan of the
  index (destination, state, due_at) with ``LIMIT``: a backlog of millions is never loaded.
- ``close`` flushes pending operations, checkpoints the WAL and closes the file; jobs claimed
  and not settled stay and are due again when their lease lapses (or at the next ``start``).

Modules: ``queue`` (the ``Queue``), ``ops`` (one class per call), ``tx`` (one transaction's
staged rows), ``store`` (the writer thread's side), ``schema`` (tables and connection settings).
"""

from eventrelay.queue.sqlite.queue import SQLiteQueue

__all__ = ["SQLiteQueue"]
