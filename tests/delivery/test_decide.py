"""The settle decision after one attempt: pure logic, including the full-jitter bounds."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.core.records import Job
from eventrelay.delivery.decide import decide

from .conftest import delivered, failing, policy

NOW = 1_800_000_000.0


def job(attempts: int = 0, received_at: float = NOW - 1.0) -> Job:
    return Job("h1", "lambda-prod", "m1", "web", "identify", received_at, b'{"type":"identify"}', attempts=attempts)


def test_success_acks_and_records_delivered_with_every_field() -> None:
    outcome = delivered()
    outcome.log_tail, outcome.executed_version, outcome.latency_ms = "START ...", "7", 12.5
    s = decide(job(attempts=2), outcome, policy(), started_at=NOW - 0.1, now=NOW)
    assert s.action == "ack"
    r = s.record
    assert (r.message_id, r.destination, r.source, r.call_type, r.attempt) == (
        "m1",
        "lambda-prod",
        "web",
        "identify",
        3,
    )
    assert (r.status, r.category, r.function, r.qualifier, r.invocation_type) == (
        "delivered",
        Category.DELIVERED,
        "fn",
        "live",
        "RequestResponse",
    )
    assert (r.log_tail, r.executed_version, r.latency_ms, r.started_at) == ("START ...", "7", 12.5, NOW - 0.1)
    assert r.event == b'{"type":"identify"}' and r.next_attempt_at is None and r.received_at == NOW - 1.0


@given(attempts=st.integers(0, 40), seed=st.integers(0, 2**32))
def test_retry_delay_stays_within_the_full_jitter_bound(attempts: int, seed: int) -> None:
    p = policy(backoff_base=2.0, backoff_cap=300.0, retry_window=1e9, max_attempts=10_000)
    s = decide(
        job(attempts=attempts),
        failing(Category.AWS_ERROR, Verdict.RETRY),
        p,
        started_at=NOW,
        now=NOW,
        rng=random.Random(seed),
    )
    assert s.action == "retry" and s.due_at is not None
    bound = min(300.0, 2.0 * 2**attempts)  # attempts made so far = attempts + 1
    assert 0.0 <= s.due_at - NOW <= bound
    assert s.record.status == "retrying" and s.record.next_attempt_at == s.due_at


def test_first_retry_comes_within_two_seconds_by_default() -> None:
    from eventrelay.config.model import DeliveryPolicy

    delays = [
        decide(
            job(),
            failing(Category.TIMEOUT, Verdict.RETRY),
            DeliveryPolicy(),
            started_at=NOW,
            now=NOW,
            rng=random.Random(i),
        ).due_at
        for i in range(200)
    ]
    assert all(d is not None and 0 <= d - NOW <= 2.0 for d in delays)


def test_retry_after_sets_a_floor() -> None:
    s = decide(job(), failing(Category.THROTTLED, Verdict.RETRY, retry_after=30.0), policy(), started_at=NOW, now=NOW)
    assert s.due_at is not None and s.due_at >= NOW + 30.0


def test_attempt_cap_dead_letters_as_failed() -> None:
    s = decide(
        job(attempts=4),
        failing(Category.TIMEOUT, Verdict.RETRY),
        policy(max_attempts=5),
        started_at=NOW,
        now=NOW,
    )
    assert (s.action, s.dead_status, s.record.status) == ("dead_letter", "failed", "failed")
    assert "max_attempts 5" in s.reason and s.record.attempt == 5


def test_window_passed_dead_letters_as_failed() -> None:
    s = decide(
        job(received_at=NOW - 5 * 3600),
        failing(Category.AWS_ERROR, Verdict.RETRY),
        policy(),
        started_at=NOW,
        now=NOW,
    )
    assert s.dead_status == "failed" and "retry window" in s.reason


def test_retry_is_never_scheduled_past_the_window() -> None:
    p = policy(retry_window=10.0, backoff_base=100.0, backoff_cap=100.0)
    for seed in range(50):
        s = decide(
            job(received_at=NOW - 9.0),
            failing(Category.AWS_ERROR, Verdict.RETRY),
            p,
            started_at=NOW,
            now=NOW,
            rng=random.Random(seed),
        )
        assert s.due_at is not None and s.due_at <= NOW + 1.0


def test_discard_dead_letters_as_discarded_with_the_reason() -> None:
    s = decide(
        job(),
        failing(
            Category.CONFIGURATION,
            Verdict.DISCARD,
            error_type="ResourceNotFoundException",
            error_message="Function not found",
        ),
        policy(),
        started_at=NOW,
        now=NOW,
    )
    assert (s.action, s.dead_status, s.record.status) == ("dead_letter", "discarded", "discarded")
    assert s.reason == "configuration: ResourceNotFoundException: Function not found"


def test_execution_error_fails_at_once_when_not_retried() -> None:
    outcome = failing(Category.EXECUTION_ERROR, Verdict.RETRY, error_type="Unhandled")
    kept = decide(job(), outcome, policy(retry_execution_errors=False), started_at=NOW, now=NOW)
    retried = decide(job(), outcome, policy(), started_at=NOW, now=NOW)
    assert kept.dead_status == "failed" and "retry_execution_errors is false" in kept.reason
    assert retried.action == "retry"
    acked = decide(job(), delivered(), policy(retry_execution_errors=False), started_at=NOW, now=NOW)
    assert acked.action == "ack"


def test_destination_backoff_counts_the_attempt_and_waits_for_the_pause() -> None:
    outcome = Outcome(Category.ACCESS_DENIED, Verdict.BACKOFF_DESTINATION, status_code=403, error_type="AccessDenied")
    s = decide(job(attempts=1), outcome, policy(), started_at=NOW, now=NOW, not_before=NOW + 60.0)
    assert s.action == "retry" and s.due_at is not None and s.due_at >= NOW + 60.0
    assert s.record.attempt == 2 and s.record.category is Category.ACCESS_DENIED


def test_a_throttle_is_postponed_without_using_up_the_attempt_cap() -> None:
    throttled = failing(Category.THROTTLED, Verdict.RETRY, status_code=429, retry_after=3.0)
    s = decide(job(attempts=4), throttled, policy(max_attempts=5), started_at=NOW, now=NOW)
    assert s.action == "postpone" and s.due_at is not None and s.due_at >= NOW + 3.0
    assert (s.record.status, s.record.attempt) == ("retrying", 5)  # the attempt after it is number 5 again


def test_a_throttle_still_ends_with_the_retry_window() -> None:
    throttled = failing(Category.THROTTLED, Verdict.RETRY, status_code=429)
    s = decide(job(received_at=NOW - 10.0), throttled, policy(retry_window=5.0), started_at=NOW, now=NOW)
    assert s.action == "dead_letter" and s.dead_status == "failed" and "retry window" in s.reason
