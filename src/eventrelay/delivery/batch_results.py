"""Settling one attempt of a batch: one ``Settlement`` per event, from the ``BatchOutcome``.

Each event is decided on its own outcome as a single event is (``decide.py``: its own attempt
count, retry window and attempt cap), and every record carries the batch (id, size, bytes) and
the answer's warning, if any. Then:

    the invoke succeeded           per-event results: delivered events are acked; events the function
                                   reported failed retry on their own (own backoff), with no batch key
    the whole batch failed         the events that retry stay one batch: the same due time for all (the
      (Execution Error, timeout,   first one's, never past another's retry window) and a ``BatchKey``,
      throttled, aws_error, ...)   so the batcher puts them together again (``batcher.py``)
    ... for the BISECT_AFTER-th    the batch is split in halves (receipt order), each a batch of its own
      Execution Error of a batch   that splits again at its next Execution Error: recursively, until a
                                   poison event is alone (it then retries, and fails, on its own, and
                                   the others are delivered), as AWS's BisectBatchOnFunctionError does

A batch's id is its key's id while it is retried whole, so the delivery log shows the same batch
id on each try of the same batch; its halves get new ids.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random

from eventrelay.config.model import DeliveryPolicy
from eventrelay.core.outcome import Category
from eventrelay.delivery.batcher import Batch, BatchKey
from eventrelay.delivery.decide import Settlement, decide, window_start
from eventrelay.destinations.base import BatchOutcome

BISECT_AFTER = 2  # Execution Errors of one batch before it is split (the first may be transient)
# A batch id: this process's random prefix (unique across processes and restarts) and a counter
# (one system call per process, not per batch).
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)


def new_batch_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):x}"


def batch_id_of(batch: Batch) -> str:
    """The id the delivery log shows for this try of ``batch``."""
    return batch.key.id if batch.key is not None else new_batch_id()


def settle_batch(
    batch: Batch,
    result: BatchOutcome,
    policy: DeliveryPolicy,
    *,
    batch_id: str,
    started_at: float,
    now: float,
    not_before: float | None = None,
    rng: random.Random | None = None,
) -> list[Settlement]:
    """The settlements of the jobs of ``batch`` after the attempt that produced ``result``."""
    settlements = []
    for job, outcome in zip(batch.jobs, result.events, strict=True):
        s = decide(job, outcome, policy, started_at=started_at, now=now, not_before=not_before, rng=rng)
        record = s.record
        record.batch_id, record.batch_size, record.batch_bytes = batch_id, len(batch), result.payload_bytes
        record.warning = result.warning
        if job.batch is not None and s.action in ("retry", "postpone"):  # retried on its own from now
            s = dataclasses.replace(s, job=dataclasses.replace(job, batch=None))
        settlements.append(s)
    if result.invoke.ok:
        return settlements
    return _retry_together(batch, result, settlements, policy, batch_id, now)


def _retry_together(
    batch: Batch,
    result: BatchOutcome,
    settlements: list[Settlement],
    policy: DeliveryPolicy,
    batch_id: str,
    now: float,
) -> list[Settlement]:
    """Whole-batch failure: the retrying events keep one due time and a key (halves: two keys)."""
    retrying = [i for i, s in enumerate(settlements) if s.action in ("retry", "postpone")]  # postpone: throttled
    if not retrying:
        return settlements
    errors = batch.key.execution_errors if batch.key is not None else 0
    errors += result.invoke.category is Category.EXECUTION_ERROR
    groups: list[tuple[list[int], BatchKey | None]]
    if len(retrying) == 1:
        groups = [(retrying, None)]
    elif errors >= BISECT_AFTER:
        half = (len(retrying) + 1) // 2
        first, second = retrying[:half], retrying[half:]
        # each half splits again at its next Execution Error (errors BISECT_AFTER - 1)
        groups = [(part, BatchKey(new_batch_id(), len(part), BISECT_AFTER - 1)) for part in (first, second)]
    else:
        groups = [(retrying, BatchKey(batch_id, len(retrying), errors))]
    due = settlements[retrying[0]].due_at or now  # a retry settlement always has one
    out = list(settlements)
    for members, key in groups:
        for i in members:
            s = settlements[i]
            at = min(due, window_start(s.job) + policy.retry_window)  # never past its own window
            s.record.next_attempt_at = at
            job = dataclasses.replace(s.job, batch=None if key is None else str(key))
            out[i] = dataclasses.replace(s, job=job, due_at=at)
    return out
