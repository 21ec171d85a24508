"""What to do with a job after one attempt: a pure function from (job, outcome, policy) to a ``Settlement``.

SUCCESS                          -> record delivered, ack
FILTERED                         -> record filtered (with the filter that matched), ack: never retried
RETRY                            -> record retrying, retry at the RetryPolicy's time
                                    (or, when it gives up: record failed, dead letter "failed");
                                    the window runs from the receipt, or from the last re-drive
RETRY of an execution_error when
  delivery.retry_execution_errors is false -> record failed, dead letter "failed" (the one place
                                    this policy applies: destinations classify it as RETRY)
DISCARD                          -> record discarded, dead letter "discarded" with the reason
BACKOFF_DESTINATION              -> as RETRY (the attempt counts), due no earlier than the end of
                                    the destination-wide pause; the worker pauses the destination
RETRY of a throttled attempt     -> record retrying, postpone (due again, the attempt NOT counted:
                                    a throttle is not the event's fault, so it never uses up
                                    max_attempts; the attempt after it carries the same number);
                                    the retry window still applies, and Retry-After is honoured
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from eventrelay.config.model import DeliveryPolicy
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.core.records import AttemptRecord, DeadStatus, DeliveryStatus, Job
from eventrelay.delivery.retry import RetryPolicy

Action = Literal["ack", "filter", "retry", "postpone", "dead_letter"]  # filter: an ack of an event not sent


@dataclass(frozen=True, slots=True)
class Settlement:
    """The record to write and the queue call to make, in that order."""

    job: Job
    record: AttemptRecord
    action: Action
    due_at: float | None = None  # retry, postpone
    dead_status: DeadStatus | None = None  # dead_letter
    reason: str = ""


def retry_policy(policy: DeliveryPolicy) -> RetryPolicy:
    return RetryPolicy(
        base=policy.backoff_base,
        cap=policy.backoff_cap,
        window=policy.retry_window,
        max_attempts=policy.max_attempts,
    )


def decide(
    job: Job,
    outcome: Outcome,
    policy: DeliveryPolicy,
    *,
    started_at: float,
    now: float,
    not_before: float | None = None,
    rng: random.Random | None = None,
) -> Settlement:
    """Settle ``job`` after the attempt that produced ``outcome``.

    ``not_before``: the end of a destination-wide pause; a retry is never due earlier.
    """
    verdict = outcome.verdict
    if verdict is Verdict.SUCCESS:
        return Settlement(job, _record(job, outcome, "delivered", started_at), "ack")
    if verdict is Verdict.FILTERED:
        return Settlement(job, _record(job, outcome, "filtered", started_at), "filter")
    if verdict is Verdict.DISCARD:
        reason = _reason(outcome)
        return Settlement(
            job,
            _record(job, outcome, "discarded", started_at),
            "dead_letter",
            dead_status="discarded",
            reason=reason,
        )
    if outcome.category is Category.EXECUTION_ERROR and not policy.retry_execution_errors:
        reason = f"{_reason(outcome)} (delivery.retry_execution_errors is false)"
        return _failed(job, outcome, started_at, reason)
    throttled = outcome.category is Category.THROTTLED
    attempts = job.attempts if throttled else job.attempts + 1  # the cap counts the event's own failures
    retry_after = outcome.retry_after
    if not_before is not None:
        retry_after = max(retry_after or 0.0, not_before - now)
    decision = retry_policy(policy).decide(
        attempts=attempts,
        received_at=window_start(job),
        now=now,
        retry_after=retry_after,
        rng=rng,
        window_from="receipt" if job.redriven_at is None else "re-drive",
    )
    if decision.retry_at is None:
        return _failed(job, outcome, started_at, f"{_reason(outcome)}; {decision.reason}")
    record = _record(job, outcome, "retrying", started_at, next_attempt_at=decision.retry_at)
    action: Action = "postpone" if throttled else "retry"
    return Settlement(job, record, action, due_at=decision.retry_at, reason=decision.reason)


def window_start(job: Job) -> float:
    """Where ``job``'s retry window starts: its receipt, or its last re-drive (an operator's
    re-drive gives a fresh window, as it gives a fresh attempt count). The delivery log keeps
    ``job.received_at``, so end-to-end latency is still measured from the receipt."""
    if job.redriven_at is None:
        return job.received_at
    return max(job.received_at, job.redriven_at)


def _failed(job: Job, outcome: Outcome, started_at: float, reason: str) -> Settlement:
    return Settlement(
        job, _record(job, outcome, "failed", started_at), "dead_letter", dead_status="failed", reason=reason
    )


def _reason(outcome: Outcome) -> str:
    parts = [str(outcome.category)]
    if outcome.error_type:
        parts.append(outcome.error_type)
    if outcome.error_message:
        parts.append(outcome.error_message)
    return ": ".join(parts)


def _record(
    job: Job,
    outcome: Outcome,
    status: DeliveryStatus,
    started_at: float,
    *,
    next_attempt_at: float | None = None,
) -> AttemptRecord:
    request = outcome.request
    invocation_type = request.get("invocation_type", request.get("InvocationType"))
    return AttemptRecord(
        message_id=job.message_id,
        destination=job.destination,
        source=job.source,
        call_type=job.call_type,
        attempt=job.attempts + 1,
        status=status,
        category=outcome.category,
        started_at=started_at,
        latency_ms=outcome.latency_ms,
        received_at=job.received_at,
        function=outcome.function,
        qualifier=outcome.qualifier,
        invocation_type=invocation_type if isinstance(invocation_type, str) else None,
        status_code=outcome.status_code,
        error_type=outcome.error_type,
        error_message=outcome.error_message,
        log_tail=outcome.log_tail,
        executed_version=outcome.executed_version,
        request=request,
        response_body=outcome.response_body,
        event=job.body,
        next_attempt_at=next_attempt_at,
        filter=outcome.filter,
        replay=job.replay,
    )
