"""The ``jetstream`` queue backend: NATS JetStream shared by many ingest and delivery processes.

Layout and names: see ``names.py``. In short:

- ``append`` publishes one message per (event, destination) on ``P.job.<destination>.<source>``
  with ``Nats-Msg-Id = "<destination>/<messageId>"`` and returns only after every PubAck (a
  PubAck with ``duplicate`` means the stream's duplicate window already holds it). Events no
  destination wanted go to ``P.unrouted.<source>`` (``Nats-Msg-Id = "/<messageId>"``). One
  message per destination keeps each destination's consumer reading only its own work (exact
  depth, no skipping) and lets a resend complete an append a crash cut short.
- Each destination has one durable pull consumer (``d-<destination>``, explicit acks,
  ``AckWait`` = the first claim's lease, i.e. attempt timeout + margin) shared by every delivery
  process: JetStream hands each message to one claimer at a time.
- ``retry`` is a NAK with delay. A message cannot change on NAK, so the attempt count, the
  first attempt's time and the delivery's reply subject of a retried job live in a small KV
  bucket ``P_ATTEMPTS`` keyed by destination and message (``attempts.py``: written on retry,
  read only when a message comes back, deleted when the job settles, entries expire with
  ``max_age``). A lease that lapsed (a crash mid-attempt) is not an attempt, as in SQLite.
  ``extend`` is an in-progress ack. ``dead_letter`` publishes to ``P_DEAD`` (no age limit) and
  acks; ``redrive`` republishes from there as a fresh message and deletes the dead letter, and
  for a job waiting for a retry publishes a fresh copy of its work message and acks the waiting
  one through its reply subject. The fresh message has a new stream sequence, so no attempt
  count applies to it: attempts start at 0. It carries ``Er-Redriven-At`` (the re-drive time,
  where its retry window starts) next to the unchanged ``Er-Received-At``.
- The stream keeps messages by age (limits retention, ``max_age`` default 7 days, discard new:
  it never drops a waiting job for room), acked ones included. ``max_age`` must exceed every
  destination's retry window (default 4 h): a job still waiting after ``max_age`` (a destination
  disabled for a week) is dropped by JetStream. Waiting jobs are bounded by ``max_events``,
  counted from the consumers (pending + unacknowledged), refreshed at most every
  ``BOUND_REFRESH`` seconds.
- The archive (``archive.py``) is a stream of its own, ``P_ARCHIVE``: ``append`` publishes each
  accepted event there once, in the same gather as its work messages; its limits are
  ``archive.retention`` (max age) and ``archive.max_bytes`` (max bytes, discard old: the oldest
  go first). Reads use their own connection and ephemeral consumers (``archive_scan.py``).
- Replays (``replays.py``): records in the KV bucket ``P_REPLAYS`` changed by compare-and-set;
  a step publishes its jobs (``P.job.<destination>.<source>.replay.<id>``, deduplicated by
  replay, archived event and destination) before it moves the cursor, so a step repeated after
  a crash is dropped by the duplicate window; a replay's jobs are deleted when settled, so what
  is on its subjects is what it has waiting. Weaker than SQLite's one commit: a step repeated
  later than ``ingest.dedup_window`` after its first try would send its jobs again.

Modules: ``queue`` (the ``Queue``), ``names`` (subjects, streams, headers), ``messages`` (jobs
to messages and back), ``attempts`` (retried jobs' state), ``fetch`` (non-blocking pulls),
``keepalive`` (leases over AckWait), ``redrive`` (dead letters and retries due now),
``archive`` and ``archive_scan`` (the archive), ``replays`` (replays' records and jobs).
The connection, stream set-up and error translation are ``storage/nats.py``'s, shared with the
JetStream delivery log.
"""

from eventrelay.queue.jetstream.queue import JetStreamQueue

__all__ = ["JetStreamQueue"]
