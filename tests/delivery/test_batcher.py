"""Assembling batches: by group, full at max_events or max_bytes, due after max_wait, and never
over the payload limit of the invocation type (hypothesis, through the real payload encoding)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventrelay.core.records import Job
from eventrelay.delivery.batcher import Batch, Batcher, BatchKey
from eventrelay.destinations.aws_lambda.batch_payload import encode
from eventrelay.destinations.aws_lambda.batching import BatchingAwsLambdaDestination
from eventrelay.destinations.aws_lambda.settings import MAX_PAYLOAD_BYTES, MIN_BATCH_BYTES, AwsLambdaSettings
from eventrelay.destinations.base import BatchLimits, SendRequest

BASE = {"lambda": "my-fn", "region": "us-west-2", "role_address": "arn:aws:iam::123456789012:role/r"}
LIMITS = BatchLimits(max_events=3, max_bytes=200, max_wait=1.0, envelope_bytes=12, separator_bytes=1)
PREFIX = b'{"messageId":"%06d","p":"'  # 27 bytes with the id filled in
SUFFIX = b'"}'


def job(n: int, size: int = 40, *, received_at: float | None = None, batch: str | None = None) -> Job:
    """Job ``n`` whose body is exactly ``size`` bytes (at least 29)."""
    head = PREFIX % n
    body = head + b"x" * (size - len(head) - len(SUFFIX)) + SUFFIX
    at = float(n) if received_at is None else received_at
    return Job(f"h{n}", "d", f"m{n}", "web", "track", at, body, batch=batch)


def request(j: Job) -> SendRequest:
    return SendRequest(j.body, orjson.loads(j.body), j.source, j.message_id)


def ids(batch: Batch) -> list[str]:
    return [j.message_id for j in batch.jobs]


def test_a_batch_leaves_when_it_holds_max_events() -> None:
    batcher = Batcher(LIMITS)
    closed = [b for n in range(7) for b in batcher.add(job(n), request(job(n)), "fn", now=0.0)]
    assert [ids(b) for b in closed] == [["m0", "m1", "m2"], ["m3", "m4", "m5"]]
    assert batcher.pending == 1 and batcher.next_deadline() == 1.0


def test_the_event_that_would_go_over_max_bytes_opens_the_next_batch() -> None:
    batcher = Batcher(LIMITS)  # 12 + 90 + 1 + 90 = 193 bytes fit; a third would make 284
    closed = [b for n in range(3) for b in batcher.add(job(n, 90), request(job(n, 90)), "fn", now=0.0)]
    assert [ids(b) for b in closed] == [["m0", "m1"]]
    assert len(encode([r.body for r in closed[0].requests])) == 193


def test_an_event_too_large_to_fit_alone_leaves_alone_at_once() -> None:
    batcher = Batcher(LIMITS)
    batcher.add(job(0), request(job(0)), "fn", now=0.0)
    [alone] = batcher.add(job(1, 190), request(job(1, 190)), "fn", now=0.0)
    assert ids(alone) == ["m1"] and batcher.pending == 1


def test_groups_never_share_a_batch_and_each_leaves_max_wait_after_its_first_event() -> None:
    batcher = Batcher(LIMITS)
    batcher.add(job(0), request(job(0)), "fn-a", now=10.0)
    batcher.add(job(1), request(job(1)), "fn-b", now=10.5)
    batcher.add(job(2), request(job(2)), "fn-a", now=10.7)
    assert batcher.due(10.99) == [] and batcher.next_deadline() == 11.0
    [a] = batcher.due(11.0)
    assert (a.group, ids(a)) == ("fn-a", ["m0", "m2"])
    [b] = batcher.due(11.5)
    assert (b.group, ids(b)) == ("fn-b", ["m1"]) and batcher.pending == 0


def test_a_closed_batch_lists_its_events_in_receipt_order() -> None:
    batcher = Batcher(LIMITS)
    for n, received in ((0, 5.0), (1, 3.0), (2, 4.0)):
        closed = batcher.add(job(n, received_at=received), request(job(n)), "fn", now=0.0)
    assert ids(closed[0]) == ["m1", "m2", "m0"]


def test_a_batch_retried_whole_is_put_together_again_apart_from_other_events() -> None:
    key = str(BatchKey("b1", 2, 1))
    batcher = Batcher(LIMITS)
    assert batcher.add(job(0, batch=key), request(job(0)), "fn", now=0.0) == []
    assert batcher.add(job(1), request(job(1)), "fn", now=0.0) == []  # not of that batch
    [again] = batcher.add(job(2, batch=key), request(job(2)), "fn", now=0.0)  # all of it is back
    assert ids(again) == ["m0", "m2"] and again.key == BatchKey("b1", 2, 1)
    assert [ids(b) for b in batcher.drain()] == [["m1"]]


def test_a_job_handed_in_again_while_waiting_is_not_batched_twice() -> None:
    batcher = Batcher(LIMITS)
    batcher.add(job(0), request(job(0)), "fn", now=0.0)
    assert batcher.add(job(0), request(job(0)), "fn", now=0.1) == [] and batcher.pending == 1


def test_a_batch_key_reads_back_only_what_it_wrote() -> None:
    assert BatchKey.parse(str(BatchKey("ab12", 50, 1))) == BatchKey("ab12", 50, 1)
    assert [BatchKey.parse(t) for t in (None, "", "x", "a/b/c", "a/1")] == [None] * 5


def test_full_batches_of_32_kb_events_stay_under_6_mb_for_request_response() -> None:
    limits = BatchLimits(10_000, MAX_PAYLOAD_BYTES["RequestResponse"], 1.0, envelope_bytes=12, separator_bytes=1)
    batcher = Batcher(limits)
    jobs = [job(n, 32_000 - n % 7) for n in range(500)]
    closed = [b for j in jobs for b in batcher.add(j, request(j), "fn", now=0.0)] + batcher.drain()
    sizes = [len(encode([r.body for r in b.requests])) for b in closed]
    assert max(sizes) <= 6_291_456 < max(sizes) + 32_000  # each full batch as close to the limit as an event
    assert sum(len(b) for b in closed) == 500


invocation = st.sampled_from(sorted(MAX_PAYLOAD_BYTES))


@st.composite
def configured(draw: Any) -> tuple[str, dict[str, Any], list[int]]:
    invocation_type = draw(invocation)
    cap = MAX_PAYLOAD_BYTES[invocation_type]
    max_bytes = draw(st.one_of(st.just(cap), st.integers(MIN_BATCH_BYTES, cap)))
    max_events = draw(st.integers(1, 400))
    sizes = draw(st.lists(st.integers(30, 48_000), min_size=1, max_size=300))
    return invocation_type, {"max_bytes": max_bytes, "max_events": max_events}, sizes


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=configured())
def test_a_batch_is_never_over_the_limit_of_its_invocation_type(case: tuple[str, dict[str, Any], list[int]]) -> None:
    invocation_type, batch, sizes = case
    values = {**BASE, "invocation_type": invocation_type, "batch": batch}
    settings_ = AwsLambdaSettings.model_validate(values)
    assert settings_.batch is not None
    limits = BatchingAwsLambdaDestination("d", settings_, settings_.batch, external_id="ws").batch
    batcher = Batcher(limits)
    jobs = [job(n, size) for n, size in enumerate(sizes)]
    closed = [b for j in jobs for b in batcher.add(j, request(j), "fn", now=0.0)] + batcher.drain()

    assert sorted(j.message_id for b in closed for j in b.jobs) == sorted(j.message_id for j in jobs)
    for b in closed:
        payload = encode([r.body for r in b.requests])
        assert orjson.loads(payload)["batch"] == [r.event for r in b.requests]
        assert len(b) <= limits.max_events
        if len(b) > 1 or len(payload) <= limits.max_bytes:
            assert len(payload) <= limits.max_bytes <= MAX_PAYLOAD_BYTES[invocation_type]
        else:  # an event too large even alone travels alone (and the destination refuses it)
            assert len(b.jobs[0].body) + limits.envelope_bytes > limits.max_bytes
