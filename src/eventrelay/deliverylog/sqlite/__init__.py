"""The SQLite delivery log: every attempt, each event's state per destination, stats and samples.

Its own file (``deliverylog.db``) beside the queue, in WAL mode with ``synchronous=NORMAL``.
NORMAL is enough here, unlike the queue's FULL: the log is written *before* the queue settles a
job (at-least-once), so a power loss can lose at most the last log rows, i.e. a missing history
line, while the queue still holds the job and attempts it again. Nothing accepted is lost.

Writes go through the group-commit writer (``storage/sqlite_writer.py``, as the queue's), which
runs whatever is waiting in one transaction, so thousands of records per second cost a few
commits. Reads run on a second connection in their own thread; neither ever blocks the event
loop. WAL lets other processes (the CLI) read, and write briefly, while a server runs.

Retention: at most ``max_attempts`` attempt rows and ``max_age`` seconds of history; event bodies
(kept for failed attempts, and one delivered attempt per destination and second, for samples) on
at most ``max_bodies`` rows. Pruning runs in the writer thread in bounded batches so it never holds
the write lock for long.

Modules: ``log`` (the ``DeliveryLog``), ``writes`` (write operations, the writer's side,
retention), ``queries`` (reads and stats), ``schema`` (tables, statements, connection),
``rows`` (records to rows and back).
"""

from eventrelay.deliverylog.sqlite.log import SQLiteDeliveryLog
from eventrelay.deliverylog.sqlite.writes import DEFAULT_MAX_AGE

__all__ = ["DEFAULT_MAX_AGE", "SQLiteDeliveryLog"]
