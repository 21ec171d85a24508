"""Each failure category produced by a real failing path over the wire (no hand-built responses)."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import orjson
import pytest
from aiohttp import web

from eventrelay.core.outcome import Category, Verdict
from eventrelay.destinations.aws_lambda.credentials import RoleCredentialCache
from tests.destinations.lambda_doubles import (
    MakeDestination,
    RecordingLambda,
    aws_error,
    dropping_server,
    reply,
)
from tests.support.process import free_port
from tests.support.send import request_for

EVENT = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-1"}
BODY = orjson.dumps(EVENT)


async def test_throttled_with_retry_after_then_delivered(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    lambda_server.script.append(aws_error(429, "TooManyRequestsException", "Rate exceeded", **{"Retry-After": "3"}))
    dest = make_destination()

    first = await dest.send(request_for(EVENT), 10.0)
    second = await dest.send(request_for(EVENT), 10.0)

    assert (first.category, first.verdict) == (Category.THROTTLED, Verdict.RETRY)
    assert first.retry_after == 3.0
    assert first.status_code == 429
    assert first.error_type == "TooManyRequestsException"
    assert first.error_message == "Rate exceeded"
    assert second.category is Category.DELIVERED


@pytest.mark.parametrize(
    ("status", "code", "category", "verdict"),
    [
        (500, "ServiceException", Category.AWS_ERROR, Verdict.RETRY),
        (502, "ResourceNotReadyException", Category.AWS_ERROR, Verdict.RETRY),
        (503, "ServiceUnavailableException", Category.AWS_ERROR, Verdict.RETRY),
        (404, "ResourceNotFoundException", Category.CONFIGURATION, Verdict.DISCARD),
        (400, "InvalidRequestContentException", Category.CONFIGURATION, Verdict.DISCARD),
        (413, "RequestTooLargeException", Category.CONFIGURATION, Verdict.DISCARD),
        (502, "KMSDisabledException", Category.CONFIGURATION, Verdict.DISCARD),
        (403, "AccessDeniedException", Category.ACCESS_DENIED, Verdict.BACKOFF_DESTINATION),
    ],
)
async def test_lambda_error_answers(
    make_destination: MakeDestination,
    lambda_server: RecordingLambda,
    status: int,
    code: str,
    category: Category,
    verdict: Verdict,
) -> None:
    lambda_server.default = aws_error(status, code, f"{code} happened")
    dest = make_destination()

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert (outcome.category, outcome.verdict) == (category, verdict)
    assert outcome.status_code == status
    assert outcome.error_type == code
    assert outcome.error_message == f"{code} happened"
    assert len(lambda_server.requests) == 1


async def test_function_that_raises_is_an_execution_error(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    error = {"errorMessage": "boom", "errorType": "ValueError", "requestId": "r1", "stackTrace": ["  File x"]}
    log = base64.b64encode(b"[ERROR] ValueError: boom").decode()
    lambda_server.default = reply(
        200,
        error,
        {"X-Amz-Function-Error": "Unhandled", "X-Amz-Log-Result": log, "X-Amz-Executed-Version": "3"},
    )
    dest = make_destination(log_type="Tail")

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert (outcome.category, outcome.verdict) == (Category.EXECUTION_ERROR, Verdict.RETRY)
    assert outcome.status_code == 200
    assert outcome.error_type == "ValueError"
    assert outcome.error_message == "boom"
    assert outcome.log_tail == "[ERROR] ValueError: boom"
    assert outcome.executed_version == "3"
    assert json.loads(outcome.response_body or "")["errorType"] == "ValueError"


async def test_function_slower_than_the_timeout_is_a_timeout(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    async def slow(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return reply(200)

    dest = make_destination()
    assert (await dest.send(request_for(EVENT), 10.0)).ok  # the role is assumed; now only the invoke is timed
    lambda_server.default = slow

    started = time.monotonic()
    outcome = await dest.send(request_for(EVENT), 0.5)

    assert (outcome.category, outcome.verdict) == (Category.TIMEOUT, Verdict.RETRY)
    assert 0.5 <= time.monotonic() - started < 2.5
    assert 450 <= outcome.latency_ms < 2500


async def test_connection_dropped_mid_request_is_an_aws_error(
    make_destination: MakeDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = await dropping_server()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
    try:
        dest = make_destination()
        outcome = await dest.send(request_for(EVENT), 10.0)
    finally:
        server.close()
        await server.wait_closed()

    assert (outcome.category, outcome.verdict) == (Category.AWS_ERROR, Verdict.RETRY)
    assert outcome.error_type == "ConnectionError"
    assert outcome.status_code is None


async def test_connection_refused_is_an_aws_error(
    make_destination: MakeDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{free_port()}")
    dest = make_destination()

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert (outcome.category, outcome.verdict) == (Category.AWS_ERROR, Verdict.RETRY)
    assert outcome.error_type == "ConnectionError"


async def test_dns_failure_is_an_aws_error(make_destination: MakeDestination, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://lambda.invalid")
    dest = make_destination()

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert outcome.category is Category.AWS_ERROR
    assert outcome.error_type == "ConnectionError"


async def test_refused_session_token_is_reassumed_once_then_delivered(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    cache = RoleCredentialCache()
    lambda_server.script.append(
        aws_error(403, "ExpiredTokenException", "The security token included in the request is expired")
    )
    dest = make_destination(cache=cache)

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert outcome.category is Category.DELIVERED
    assert cache.assume_calls == 2
    assert len(lambda_server.requests) == 2


async def test_token_refused_after_reassuming_is_invalid_credentials(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    cache = RoleCredentialCache()
    lambda_server.default = aws_error(403, "UnrecognizedClientException", "The security token is invalid")
    dest = make_destination(cache=cache)

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert (outcome.category, outcome.verdict) == (Category.INVALID_CREDENTIALS, Verdict.BACKOFF_DESTINATION)
    assert outcome.error_type == "UnrecognizedClientException"
    assert cache.assume_calls == 2
    assert len(lambda_server.requests) == 2


async def test_no_external_id_at_all_is_a_configuration_error(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    dest = make_destination(external_id=None)

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert outcome.category is Category.CONFIGURATION
    assert "External ID" in (outcome.error_message or "")
    assert lambda_server.requests == []


async def test_missing_aws_profile_is_an_outcome_naming_it(
    make_destination: MakeDestination, lambda_server: RecordingLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    dest = make_destination()

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert (outcome.category, outcome.verdict) == (Category.AWS_ERROR, Verdict.RETRY)
    assert outcome.error_type == "ClientSetupFailed"
    assert "no-such-profile" in (outcome.error_message or "")
    assert lambda_server.requests == []


async def test_error_code_in_the_body_only_is_read_as_botocore_does(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    lambda_server.default = reply(
        404, {"__type": "com.amazonaws.lambda#ResourceNotFoundException", "Message": "Function not found: x"}
    )
    dest = make_destination()

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert (outcome.category, outcome.error_type) == (Category.CONFIGURATION, "ResourceNotFoundException")
    assert outcome.error_message == "Function not found: x"
