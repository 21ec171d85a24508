"""The ``aws_lambda`` destination with ``batch`` set: many events per invoke (a ``BatchDestination``).

``send_batch`` makes one signed Invoke of ``{"batch": [...]}`` (``batch_payload.py``) to the
function of the batch's group, classified as a single event's invoke is (``classify.py``), then
gives each event its outcome:

    the payload over batch.max_bytes (an event too large     configuration for each, not sent
      to fit alone)
    the invoke failed (Execution Error, timeout, throttled,  every event shares that outcome (the
      aws_error, access_denied, ...)                         worker retries the batch as a whole)
    delivered, answer with batchItemFailures                 those events: an Execution Error of their
                                                             own (BatchItemFailure); the rest delivered
    delivered, answer unreadable as batchItemFailures        every event: an Execution Error
      (InvalidBatchItemFailures), as Lambda treats it
    delivered, Event invocation (202: no answer to read)     every event delivered
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from eventrelay.core.external_id import external_id as external_id_for
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.destinations.aws_lambda.batch_payload import ENVELOPE_BYTES, SEPARATOR, encode, read_results
from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
from eventrelay.destinations.aws_lambda.function_name import FunctionRef
from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings, BatchSettings
from eventrelay.destinations.base import BatchLimits, BatchOutcome, SendRequest

ITEM_FAILED = "BatchItemFailure"  # error type of an event the function named in batchItemFailures
UNREADABLE = "InvalidBatchItemFailures"  # error type when the answer's batchItemFailures cannot be read
TOO_LARGE = "BatchPayloadTooLarge"  # error type of an event that cannot fit under batch.max_bytes


class BatchingAwsLambdaDestination(AwsLambdaDestination):
    """Delivers events to AWS Lambda in batches (see the module doc); ``send`` still takes one."""

    def __init__(self, name: str, settings: AwsLambdaSettings, batch: BatchSettings, **options: Any) -> None:
        """``batch`` is ``settings.batch``; ``options`` as for ``AwsLambdaDestination``."""
        super().__init__(name, settings, **options)
        self.batch = BatchLimits(
            max_events=batch.max_events,
            max_bytes=batch.max_bytes,
            max_wait=batch.max_wait,
            envelope_bytes=ENVELOPE_BYTES,
            separator_bytes=len(SEPARATOR),
        )
        self._groups: dict[tuple[Any, str], str] = {}

    def batch_group(self, request: SendRequest) -> str:
        """The function and the External ID: one invoke goes to one function with one role session."""
        key = (request.event.get("type"), request.source)
        group = self._groups.get(key)
        if group is None:  # a handful of call types x sources: computed once each
            role_external_id = external_id_for(self.external_id, request.source) or ""
            group = self._groups[key] = f"{self.function_of(request.event).raw}\n{role_external_id}"
        return group

    async def send_batch(self, requests: Sequence[SendRequest], timeout: float) -> BatchOutcome:  # noqa: ASYNC109
        first = requests[0]
        ref = self.function_of(first.event)
        payload = encode([r.body for r in requests])
        size, count = len(payload), len(requests)
        if size > self.batch.max_bytes:
            refused = self._too_large(ref, requests, size)
            return BatchOutcome(refused, [refused] * count, size)
        invoke, answer = await self._timed(ref, payload, first.source, timeout)
        invoke.request["batch"] = {"events": count, "bytes": size}
        if not invoke.ok or answer is None or self.settings.invocation_type != "RequestResponse":
            return BatchOutcome(invoke, [invoke] * count, size)
        results = read_results(answer.body, {r.message_id for r in requests})
        if results.unreadable is not None:
            failed = _execution_error(invoke, UNREADABLE, f"the function's answer is unreadable: {results.unreadable}")
            return BatchOutcome(failed, [failed] * count, size)
        if not results.failed:
            return BatchOutcome(invoke, [invoke] * count, size, results.warning)
        item = _execution_error(invoke, ITEM_FAILED, "the function reported this event failed (batchItemFailures)")
        events = [item if r.message_id in results.failed else invoke for r in requests]
        return BatchOutcome(invoke, events, size, results.warning)

    def _too_large(self, ref: FunctionRef, requests: Sequence[SendRequest], size: int) -> Outcome:
        limit = self.batch.max_bytes
        if len(requests) == 1:
            what = f"the event is {len(requests[0].body)} bytes; as a batch of one the payload is {size} bytes"
        else:
            what = f"{len(requests)} events make a payload of {size} bytes"
        outcome = self._base(ref, Category.CONFIGURATION, Verdict.DISCARD)
        outcome.error_type = TOO_LARGE
        outcome.error_message = f"{what}, over batch.max_bytes ({limit}): not sent"
        outcome.request["batch"] = {"events": len(requests), "bytes": size}
        return outcome


def _execution_error(invoke: Outcome, error_type: str, message: str) -> Outcome:
    """``invoke`` as an Execution Error (retried, as a function that raised)."""
    return dataclasses.replace(
        invoke, category=Category.EXECUTION_ERROR, verdict=Verdict.RETRY, error_type=error_type, error_message=message
    )
