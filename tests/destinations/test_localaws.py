"""The destination against the local AWS endpoint: real STS trust checks, SigV4 verification of the
Invoke with the issued session, and handlers running in AWS's awslambdaric runtime."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventrelay.config.model import LocalAws
from eventrelay.core.outcome import Category, Verdict
from eventrelay.destinations.aws_lambda.credentials import RoleCredentialCache
from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
from eventrelay.localaws.server import LocalAwsServer
from tests.destinations.lambda_doubles import fresh_session, settings
from tests.support.awsenv import isolate_aws_env
from tests.support.localaws import local_aws_endpoint
from tests.support.send import request_for

ACCOUNT = "123456789012"
WORKSPACE = "ws_local_1"
BASE_KEY, BASE_SECRET = "AKIADESTINATIONTEST1", "destination-test-base-secret-0123456789"
EVENT = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-local-1"}


@pytest.fixture
async def local_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[LocalAwsServer]:
    config = LocalAws.model_validate(
        {
            "functions_dir": str(Path(__file__).parent / "functions"),
            "account_id": ACCOUNT,
            "region": "us-west-2",
            "functions": {
                "echo": {"handler": "handlers.echo", "versions": ["1"], "aliases": {"live": "1"}},
                "raiser": {"handler": "handlers.raiser"},
                "sleeper": {"handler": "handlers.sleeper", "timeout": 10, "concurrency": 1},
            },
            "roles": {
                "invoker": {"external_id": WORKSPACE},
                "echo-only": {"external_id": WORKSPACE, "allow_invoke": ["echo"]},
            },
            "users": {BASE_KEY: BASE_SECRET},
        }
    )
    isolate_aws_env(monkeypatch, tmp_path, access_key=BASE_KEY, secret_key=BASE_SECRET)
    async with local_aws_endpoint(config, monkeypatch) as server:
        yield server


@pytest.fixture
async def made() -> AsyncIterator[list[AwsLambdaDestination]]:
    found: list[AwsLambdaDestination] = []
    yield found
    for dest in found:
        await dest.close()


def destination(made: list[AwsLambdaDestination], role: str = "invoker", **overrides: Any) -> AwsLambdaDestination:
    dest = AwsLambdaDestination(
        "local",
        settings(role_address=f"arn:aws:iam::{ACCOUNT}:role/{role}", **overrides),
        external_id=WORKSPACE,
        botocore_session=fresh_session(),
        credential_cache=RoleCredentialCache(),
    )
    made.append(dest)
    return dest


async def test_event_reaches_the_handler_with_client_context_and_qualifier(
    local_aws: LocalAwsServer, made: list[AwsLambdaDestination]
) -> None:
    dest = destination(made, **{"lambda": "echo:live"}, client_context={"app": "shop"}, log_type="Tail")

    outcome = await dest.send(request_for(EVENT), 30.0)

    assert outcome.category is Category.DELIVERED, outcome
    answer = json.loads(outcome.response_body or "")
    assert answer["event"] == EVENT
    assert answer["function_name"] == "echo"
    assert answer["function_version"] == "1"
    assert answer["custom"] == {"app": "shop"}
    assert outcome.executed_version == "1"
    assert "got track m-local-1" in (outcome.log_tail or "")


async def test_handler_that_raises_is_an_execution_error_with_its_log(
    local_aws: LocalAwsServer, made: list[AwsLambdaDestination]
) -> None:
    dest = destination(made, **{"lambda": "raiser"}, log_type="Tail")

    outcome = await dest.send(request_for(EVENT), 30.0)

    assert (outcome.category, outcome.verdict) == (Category.EXECUTION_ERROR, Verdict.RETRY)
    assert outcome.error_type == "ValueError"
    assert outcome.error_message == "the handler failed on purpose"
    assert "about to fail" in (outcome.log_tail or "")


async def test_handler_slower_than_the_timeout_is_a_timeout(
    local_aws: LocalAwsServer, made: list[AwsLambdaDestination]
) -> None:
    dest = destination(made, **{"lambda": "sleeper"})
    warm = destination(made, **{"lambda": "echo"})
    assert (await warm.send(request_for(EVENT), 30.0)).ok  # runtime and role warm

    started = time.monotonic()
    outcome = await dest.send(request_for(EVENT), 1.0)

    assert outcome.category is Category.TIMEOUT
    assert time.monotonic() - started < 4.0


async def test_wrong_external_id_is_access_denied(local_aws: LocalAwsServer, made: list[AwsLambdaDestination]) -> None:
    dest = AwsLambdaDestination(
        "local",
        settings(**{"lambda": "echo"}, role_address=f"arn:aws:iam::{ACCOUNT}:role/invoker"),
        external_id="ws_not_mine",
        botocore_session=fresh_session(),
        credential_cache=RoleCredentialCache(),
    )
    made.append(dest)

    outcome = await dest.send(request_for(EVENT), 30.0)

    assert (outcome.category, outcome.verdict) == (Category.ACCESS_DENIED, Verdict.BACKOFF_DESTINATION)


async def test_role_without_permission_on_the_function_is_access_denied(
    local_aws: LocalAwsServer, made: list[AwsLambdaDestination]
) -> None:
    dest = destination(made, role="echo-only", **{"lambda": "raiser"})

    outcome = await dest.send(request_for(EVENT), 30.0)

    assert outcome.category is Category.ACCESS_DENIED
    assert outcome.error_type == "AccessDeniedException"


async def test_unknown_function_is_a_configuration_error_and_dry_run_says_so(
    local_aws: LocalAwsServer, made: list[AwsLambdaDestination]
) -> None:
    dest = destination(made, **{"lambda": "missing-fn"}, functions={"identify": "echo"})

    outcome = await dest.send(request_for(EVENT), 30.0)
    checks = await dest.check()

    assert (outcome.category, outcome.verdict) == (Category.CONFIGURATION, Verdict.DISCARD)
    assert outcome.error_type == "ResourceNotFoundException"
    assert [(fn, o.category) for fn, o in checks] == [
        ("missing-fn", Category.CONFIGURATION),
        ("echo", Category.DELIVERED),
    ]
    assert checks[1][1].status_code == 204
