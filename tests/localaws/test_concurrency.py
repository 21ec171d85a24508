"""Reserved concurrency on the local endpoint, through boto3 as against AWS: a synchronous invoke
beyond it is refused with 429 ``TooManyRequestsException`` and its ``Reason``; Event invokes are
not refused; ``GetFunctionConcurrency`` answers it, with the permission the role grants."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import ServerThread, assume, lambda_client, local_settings

FUNCTIONS = {
    "one": {"handler": "fns.sleeper", "reserved_concurrency": 1, "throttle_retry_after": "2s", "timeout": 10},
    "closed": {"handler": "fns.trivial", "reserved_concurrency": 0},
    "open": {"handler": "fns.trivial"},
}
ROLES = {
    "invoker": {"external_id": "ws_test_123"},
    "no-read": {"external_id": "ws_test_123", "allow_get_concurrency": []},
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    st = ServerThread(local_settings(functions=FUNCTIONS, roles=ROLES))
    yield st
    st.stop()


@pytest.fixture(scope="module")
def lam(server: ServerThread) -> Any:
    return lambda_client(server.url, assume(server.url))


def test_an_invoke_beyond_the_reserved_concurrency_is_throttled_as_aws_throttles(lam: Any) -> None:
    with ThreadPoolExecutor(2) as pool:
        busy = pool.submit(lam.invoke, FunctionName="one", Payload=json.dumps({"seconds": 1.5}).encode())
        time.sleep(0.5)  # the first one now holds the one reserved slot
        with pytest.raises(ClientError) as refused:
            lam.invoke(FunctionName="one:$LATEST", Payload=b"{}")
        assert busy.result()["StatusCode"] == 200
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert error["retryAfterSeconds"] == "2"
    assert lam.invoke(FunctionName="one", Payload=b'{"seconds": 0}')["StatusCode"] == 200  # the slot is free again


def test_reserved_concurrency_zero_refuses_synchronous_invokes_but_queues_events(lam: Any) -> None:
    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName="closed", Payload=b"{}")
    assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert lam.invoke(FunctionName="closed", Payload=b"{}", InvocationType="Event")["StatusCode"] == 202


def test_get_function_concurrency_answers_the_reserved_concurrency(lam: Any) -> None:
    assert lam.get_function_concurrency(FunctionName="one")["ReservedConcurrentExecutions"] == 1
    assert lam.get_function_concurrency(FunctionName="closed")["ReservedConcurrentExecutions"] == 0
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="open")
    arn = "arn:aws:lambda:us-west-2:123456789012:function:one"
    assert lam.get_function_concurrency(FunctionName=arn)["ReservedConcurrentExecutions"] == 1


def test_get_function_concurrency_needs_its_permission_and_a_known_function(server: ServerThread, lam: Any) -> None:
    with pytest.raises(ClientError) as missing:
        lam.get_function_concurrency(FunctionName="nope")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    no_read = lambda_client(server.url, assume(server.url, role="no-read"))
    with pytest.raises(ClientError) as denied:
        no_read.get_function_concurrency(FunctionName="one")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "lambda:GetFunctionConcurrency" in denied.value.response["Error"]["Message"]
    assert no_read.invoke(FunctionName="open", Payload=b"{}")["StatusCode"] == 200  # invoking is still allowed
