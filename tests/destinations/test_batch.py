"""The aws_lambda destination with ``batch`` set: its settings, its payload on the wire, and each
event's outcome read from the function's answer (a recording Invoke server, STS on moto)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from eventrelay.config.model import Config
from eventrelay.core.outcome import Category, Verdict
from eventrelay.destinations.aws_lambda.batch_payload import encode, read_results
from eventrelay.destinations.aws_lambda.batching import ITEM_FAILED, TOO_LARGE, UNREADABLE, BatchingAwsLambdaDestination
from eventrelay.destinations.aws_lambda.credentials import RoleCredentialCache
from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings
from eventrelay.destinations.base import BatchDestination, Destination, SendRequest
from eventrelay.destinations.kind import BuildSpec
from eventrelay.destinations.registry import get
from tests.destinations.lambda_doubles import EXTERNAL_ID, IamUser, RecordingLambda, fresh_session, reply, settings
from tests.support.send import request_for

BASE = {"lambda": "my-fn", "region": "us-west-2", "role_address": "arn:aws:iam::123456789012:role/r"}
MakeBatching = Callable[..., BatchingAwsLambdaDestination]


def events(count: int, call_type: str = "track") -> list[SendRequest]:
    return [
        request_for({"type": call_type, "event": "Clicked", "userId": f"u{i}", "messageId": f"m-{i}"})
        for i in range(count)
    ]


@pytest.fixture
async def make_batching(aws_env: IamUser) -> AsyncIterator[MakeBatching]:
    made: list[BatchingAwsLambdaDestination] = []

    def make(batch: dict[str, Any] | None = None, **overrides: Any) -> BatchingAwsLambdaDestination:
        configured = settings(batch=batch or {}, **overrides)
        assert configured.batch is not None
        dest = BatchingAwsLambdaDestination(
            "lambda-batch",
            configured,
            configured.batch,
            external_id=EXTERNAL_ID,
            botocore_session=fresh_session(),
            credential_cache=RoleCredentialCache(),
        )
        made.append(dest)
        return dest

    yield make
    for dest in made:
        await dest.close()


# -- settings -------------------------------------------------------------------------------------
def test_batch_is_off_by_default_and_its_defaults_when_enabled_are_100_events_1_mb_1_s() -> None:
    assert AwsLambdaSettings.model_validate(BASE).batch is None
    batch = AwsLambdaSettings.model_validate({**BASE, "batch": {}}).batch
    assert batch is not None
    assert (batch.max_events, batch.max_bytes, batch.max_wait) == (100, 1_048_576, 1.0)
    tuned = AwsLambdaSettings.model_validate({**BASE, "batch": {"max_events": 500, "max_wait": "250ms"}}).batch
    assert tuned is not None and (tuned.max_events, tuned.max_wait) == (500, 0.25)


@pytest.mark.parametrize(
    ("invocation_type", "max_bytes", "accepted"),
    [
        ("RequestResponse", 6_291_456, True),
        ("RequestResponse", 6_291_457, False),
        ("Event", 1_048_576, True),
        ("Event", 1_048_577, False),
    ],
)
def test_max_bytes_is_capped_at_aws_payload_limit_of_the_invocation_type(
    invocation_type: str, max_bytes: int, accepted: bool
) -> None:
    values = {**BASE, "invocation_type": invocation_type, "batch": {"max_bytes": max_bytes}}
    if accepted:
        AwsLambdaSettings.model_validate(values)
        return
    with pytest.raises(ValidationError) as info:
        Config.model_validate({"destinations": [{"name": "d", "settings": values}]})
    [error] = info.value.errors()
    assert error["loc"] == ("destinations", 0, "settings", "batch")
    assert f"max_bytes {max_bytes} is over" in error["msg"] and invocation_type in error["msg"]


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        ({"max_events": 0}, "max_events"),
        ({"max_events": 10_001}, "max_events"),
        ({"max_bytes": 100}, "max_bytes"),
        ({"max_wait": "2m"}, "max_wait"),
        ({"max_size": 10}, "max_size"),
    ],
)
def test_invalid_batch_values_name_their_field(batch: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        AwsLambdaSettings.model_validate({**BASE, "batch": batch})
    assert info.value.errors()[0]["loc"] == ("batch", field)


def test_only_a_destination_configured_with_batch_is_a_batch_destination() -> None:
    kind = get("aws_lambda")

    def build(values: dict[str, Any]) -> Destination:
        return kind.build(BuildSpec("d", AwsLambdaSettings.model_validate(values), 4, "ws_1"))

    single, batching = build(BASE), build({**BASE, "batch": {"max_events": 10}})
    assert not isinstance(single, BatchDestination)
    assert isinstance(batching, BatchDestination) and batching.batch.max_events == 10


# -- payload and answers ----------------------------------------------------------------------------
def test_the_payload_is_the_v1_batch_shape_with_the_events_as_stored_in_order() -> None:
    bodies = [b'{"messageId":"a","n":1}', b'{"messageId":"b","n":2}']
    payload = encode(bodies)
    assert orjson.loads(payload) == {"batch": [{"messageId": "a", "n": 1}, {"messageId": "b", "n": 2}]}
    assert payload == b'{"batch":[' + b",".join(bodies) + b"]}"


@pytest.mark.parametrize(
    ("answer", "failed", "unreadable", "warning"),
    [
        (b'{"ok":true}', set(), False, False),
        (b"null", set(), False, False),
        (b"not json", set(), False, False),
        (b'{"batchItemFailures":null}', set(), False, False),
        (b'{"batchItemFailures":[]}', set(), False, False),
        (b'{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"a"}]}', {"a"}, False, False),
        (b'{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"zz"}]}', {"a"}, False, True),
        (b'{"batchItemFailures":"a"}', set(), True, False),
        (b'{"batchItemFailures":[{"id":"a"}]}', set(), True, False),
        (b'{"batchItemFailures":[{"itemIdentifier":""}]}', set(), True, False),
    ],
)
def test_batch_item_failures_are_read_as_lambda_event_sources_read_them(
    answer: bytes, failed: set[str], unreadable: bool, warning: bool
) -> None:
    results = read_results(answer, {"a", "b"})
    assert set(results.failed) == failed
    assert (results.unreadable is not None, results.warning is not None) == (unreadable, warning)
    if warning:
        assert results.warning is not None and "'zz'" in results.warning


# -- send_batch over the wire -----------------------------------------------------------------------
async def test_one_invoke_carries_the_batch_and_every_event_is_delivered(
    make_batching: MakeBatching, lambda_server: RecordingLambda
) -> None:
    requests = events(5)
    result = await make_batching().send_batch(requests, 10.0)

    [invoke] = lambda_server.requests
    assert invoke.path == "/2015-03-31/functions/my-fn/invocations"
    assert [e["messageId"] for e in orjson.loads(invoke.body)["batch"]] == [f"m-{i}" for i in range(5)]
    assert result.payload_bytes == len(invoke.body)
    assert result.invoke.ok and [o.category for o in result.events] == [Category.DELIVERED] * 5
    assert result.invoke.request["batch"] == {"events": 5, "bytes": len(invoke.body)}


async def test_events_named_in_batch_item_failures_fail_alone_and_unknown_ids_are_a_warning(
    make_batching: MakeBatching, lambda_server: RecordingLambda
) -> None:
    answer = {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-3"}, {"itemIdentifier": "nope"}]}
    lambda_server.script.append(reply(200, answer))

    result = await make_batching().send_batch(events(4), 10.0)

    assert result.invoke.ok
    categories = [(o.category, o.verdict, o.error_type) for o in result.events]
    delivered = (Category.DELIVERED, Verdict.SUCCESS, None)
    failed = (Category.EXECUTION_ERROR, Verdict.RETRY, ITEM_FAILED)
    assert categories == [delivered, failed, delivered, failed]
    assert result.warning is not None and "'nope'" in result.warning


async def test_an_unreadable_answer_fails_the_whole_batch_as_an_execution_error(
    make_batching: MakeBatching, lambda_server: RecordingLambda
) -> None:
    lambda_server.script.append(reply(200, {"batchItemFailures": [{"itemIdentifier": 7}]}))

    result = await make_batching().send_batch(events(3), 10.0)

    assert not result.invoke.ok and result.invoke.error_type == UNREADABLE
    assert {o.category for o in result.events} == {Category.EXECUTION_ERROR}


async def test_a_function_error_fails_the_whole_batch(
    make_batching: MakeBatching, lambda_server: RecordingLambda
) -> None:
    lambda_server.script.append(
        reply(200, {"errorMessage": "boom", "errorType": "ValueError"}, {"X-Amz-Function-Error": "Unhandled"})
    )

    result = await make_batching().send_batch(events(3), 10.0)

    assert (result.invoke.category, result.invoke.error_type) == (Category.EXECUTION_ERROR, "ValueError")
    assert all(o is result.invoke for o in result.events)


async def test_an_event_too_large_to_fit_alone_is_a_configuration_error_and_never_sent(
    make_batching: MakeBatching, lambda_server: RecordingLambda
) -> None:
    big = request_for({"type": "track", "event": "Big", "userId": "u", "messageId": "m-big", "blob": "x" * 2000})

    result = await make_batching({"max_bytes": 1024}).send_batch([big], 10.0)

    assert lambda_server.requests == []
    assert (result.invoke.category, result.invoke.verdict, result.invoke.error_type) == (
        Category.CONFIGURATION,
        Verdict.DISCARD,
        TOO_LARGE,
    )
    assert "over batch.max_bytes (1024): not sent" in (result.invoke.error_message or "")


async def test_an_event_invocation_has_no_answer_to_read_so_every_event_is_delivered(
    make_batching: MakeBatching, lambda_server: RecordingLambda
) -> None:
    result = await make_batching(invocation_type="Event").send_batch(events(3), 10.0)

    assert lambda_server.requests[0].headers["x-amz-invocation-type"] == "Event"
    assert result.invoke.status_code == 202 and {o.category for o in result.events} == {Category.DELIVERED}


def test_events_batch_together_only_for_one_function_and_one_external_id() -> None:
    configured = AwsLambdaSettings.model_validate({**BASE, "batch": {}, "functions": {"identify": "users-fn"}})
    assert configured.batch is not None
    by_source = BatchingAwsLambdaDestination("d", configured, configured.batch, external_id=None)
    track, identify = events(1)[0], events(1, "identify")[0]
    assert by_source.batch_group(track) != by_source.batch_group(identify)
    web = request_for({"type": "track", "messageId": "a"}, source="web")
    ios = request_for({"type": "track", "messageId": "b"}, source="ios")
    assert by_source.batch_group(web) != by_source.batch_group(ios)  # no workspace id: each source's own
    shared = BatchingAwsLambdaDestination("d", configured, configured.batch, external_id="ws_1")
    assert shared.batch_group(web) == shared.batch_group(ios)
