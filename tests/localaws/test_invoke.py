"""Lambda Invoke through boto3 against the local endpoint, handlers running in real awslambdaric processes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.localaws.conftest import ACCOUNT, REGION, ServerThread

ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"


def payload(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_invoke_returns_the_handler_result_with_a_real_context(lam: Any) -> None:
    r = lam.invoke(FunctionName="echo", Payload=b'{"type": "track", "event": "Signed Up"}')
    body = payload(r)
    assert r["StatusCode"] == 200
    assert "FunctionError" not in r
    assert r["ExecutedVersion"] == "$LATEST"
    assert body["event"] == {"type": "track", "event": "Signed Up"}
    assert body["function_name"] == "echo"
    assert body["invoked_function_arn"] == f"{ARN}:echo"
    assert body["aws_request_id"] == r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert 0 < body["remaining_ms"] <= 3000
    assert body["client_context"] is None


def test_client_context_reaches_the_handler_as_custom_env_client(lam: Any) -> None:
    cc = {
        "custom": {"app": "shop", "city": "Zürich"},
        "env": {"locale": "en"},
        "client": {"installation_id": "i-1", "app_title": "Shop"},
    }
    r = lam.invoke(
        FunctionName="echo",
        Payload=b"{}",
        ClientContext=base64.b64encode(json.dumps(cc, indent=2, ensure_ascii=False).encode()).decode(),
    )
    assert payload(r)["client_context"] == {
        "custom": {"app": "shop", "city": "Zürich"},
        "env": {"locale": "en"},
        "client": {"installation_id": "i-1", "app_title": "Shop"},
    }


def test_invalid_client_context_is_refused(lam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="echo", Payload=b"{}", ClientContext="not base64!")
    assert error_code(exc) == "InvalidRequestContentException"


def test_tail_returns_what_the_handler_printed_between_start_and_report(lam: Any) -> None:
    r = lam.invoke(FunctionName="printer", Payload=b'{"say": "hi there"}', LogType="Tail")
    log = base64.b64decode(r["LogResult"]).decode()
    request_id = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert "hello from the handler: hi there" in log
    assert f"END RequestId: {request_id}" in log
    assert f"REPORT RequestId: {request_id}\tDuration:" in log
    assert log.index("START") < log.index("hello from the handler") < log.index("END")


def test_without_tail_there_is_no_log_result(lam: Any) -> None:
    r = lam.invoke(FunctionName="printer", Payload=b"{}")
    assert "LogResult" not in r


def test_tail_keeps_only_the_last_4_kb(lam: Any) -> None:
    r = lam.invoke(FunctionName="chatty", Payload=b"{}", LogType="Tail")
    log = base64.b64decode(r["LogResult"])
    assert len(log) == 4096
    assert b"LAST LINE" in log
    assert b"line 00000 " not in log
    assert log.rstrip().endswith(b"\t") or b"REPORT RequestId" in log


def test_event_invocation_answers_202_and_runs_in_the_background(local_aws: ServerThread, lam: Any) -> None:
    seen: list[bytes] = []
    local_aws.server.lambda_api.set_echo(lambda fn, chunk: seen.append(chunk))
    try:
        r = lam.invoke(FunctionName="printer", InvocationType="Event", Payload=b'{"say": "async hello"}')
        assert r["StatusCode"] == 202
        assert r["Payload"].read() == b""
        deadline = time.monotonic() + 30
        while not any(b"async hello" in c for c in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(b"async hello" in c for c in seen)
    finally:
        local_aws.server.lambda_api.set_echo(None)


def test_dry_run_answers_204_without_running(lam: Any) -> None:
    r = lam.invoke(FunctionName="raiser", InvocationType="DryRun", Payload=b"{}")
    assert r["StatusCode"] == 204
    assert "FunctionError" not in r


def test_dry_run_of_an_unknown_function_is_404(lam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="nope", InvocationType="DryRun")
    assert error_code(exc) == "ResourceNotFoundException"


def test_unknown_function_is_404_resource_not_found(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert exc.value.response["Error"]["Message"] == f"Function not found: {ARN}:no-such-function"


def test_unknown_qualifier_is_404(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.invoke(FunctionName="echo", Qualifier="7", Payload=b"{}")
    assert exc.value.response["Error"]["Message"] == f"Function not found: {ARN}:echo:7"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="echo:staging", Payload=b"{}")


@pytest.mark.parametrize(
    ("name", "qualifier", "version", "invoked"),
    [
        ("echo", "live", "2", f"{ARN}:echo:live"),
        ("echo:live", None, "2", f"{ARN}:echo:live"),
        ("echo:1", None, "1", f"{ARN}:echo:1"),
        ("echo", "$LATEST", "$LATEST", f"{ARN}:echo:$LATEST"),
        (f"{ACCOUNT}:function:echo:1", None, "1", f"{ARN}:echo:1"),
        (f"{ARN}:echo", "live", "2", f"{ARN}:echo:live"),
    ],
)
def test_qualifiers_resolve_to_versions_and_aliases(
    lam: Any, name: str, qualifier: str | None, version: str, invoked: str
) -> None:
    kw = {"Qualifier": qualifier} if qualifier else {}
    r = lam.invoke(FunctionName=name, Payload=b"{}", **kw)
    body = payload(r)
    assert r["ExecutedVersion"] == version
    assert body["function_version"] == version
    assert body["invoked_function_arn"] == invoked


def test_conflicting_qualifiers_are_refused(lam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="echo:1", Qualifier="live", Payload=b"{}")
    assert error_code(exc) == "InvalidParameterValueException"


def test_non_json_payload_is_400_invalid_request_content(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidRequestContentException) as exc:
        lam.invoke(FunctionName="echo", Payload=b"this is not json")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_payload_over_6_mb_is_413(lam: Any) -> None:
    body = b'{"x": "' + b"a" * 6_291_456 + b'"}'
    with pytest.raises(ClientError) as exc:  # the code real Lambda answers (not in botocore's model)
        lam.invoke(FunctionName="echo", Payload=body)
    assert error_code(exc) == "RequestEntityTooLargeException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "6291456" in exc.value.response["Error"]["Message"]


def test_event_payload_over_1_mb_is_413(lam: Any) -> None:
    body = b'{"x": "' + b"a" * 1_048_576 + b'"}'
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="echo", InvocationType="Event", Payload=body)
    assert error_code(exc) == "RequestEntityTooLargeException"


def test_handler_exception_is_unhandled_with_aws_error_body(lam: Any) -> None:
    r = lam.invoke(FunctionName="raiser", Payload=b"{}", LogType="Tail")
    body = payload(r)
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "something went wrong in the handler"
    assert body["requestId"] == r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert any("raise ValueError" in line for line in body["stackTrace"])
    assert "[ERROR] ValueError: something went wrong in the handler" in base64.b64decode(r["LogResult"]).decode()


def test_handler_over_its_timeout_is_killed_and_replaced(lam: Any) -> None:
    started = time.monotonic()
    r = lam.invoke(FunctionName="sleeper", Payload=b'{"seconds": 30}', LogType="Tail")
    assert time.monotonic() - started < 15
    body = payload(r)
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "Task timed out after 1.00 seconds" in base64.b64decode(r["LogResult"]).decode()
    again = lam.invoke(FunctionName="sleeper", Payload=b'{"seconds": 0}')
    assert "FunctionError" not in again
    assert payload(again)["slept"] is True


def test_handler_that_exits_the_process_is_runtime_exit_error_and_the_next_invoke_works(lam: Any) -> None:
    first_pid = payload(lam.invoke(FunctionName="exiter", Payload=b"{}"))["pid"]
    r = lam.invoke(FunctionName="exiter", Payload=b'{"exit": true}')
    body = payload(r)
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]
    again = lam.invoke(FunctionName="exiter", Payload=b"{}")
    assert "FunctionError" not in again
    assert payload(again)["pid"] != first_pid


def test_workers_are_reused_between_invocations(lam: Any) -> None:
    pids = {payload(lam.invoke(FunctionName="exiter", Payload=b"{}"))["pid"] for _ in range(5)}
    assert len(pids) == 1  # concurrency 1: the one warm process serves every call


def test_response_over_6_mb_is_a_function_error(lam: Any) -> None:
    r = lam.invoke(FunctionName="big", Payload=b"{}")
    body = payload(r)
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"


def test_handler_that_cannot_load_reports_the_init_error(lam: Any) -> None:
    r = lam.invoke(FunctionName="broken", Payload=b"{}", LogType="Tail")
    body = payload(r)
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.HandlerNotFound"
    assert "does_not_exist" in body["errorMessage"]
    assert "Runtime.HandlerNotFound" in base64.b64decode(r["LogResult"]).decode()


def test_concurrent_invocations_all_complete(local_aws: ServerThread, lam: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> Any:
        return payload(lam.invoke(FunctionName="trivial", Payload=json.dumps({"i": i}).encode()))

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, range(40)))
    assert [r["i"] for r in results] == list(range(40))


def test_a_full_function_queue_is_throttled_with_429(lam: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from eventrelay.localaws import invoke_api

    monkeypatch.setattr(invoke_api, "MAX_QUEUED_PER_VERSION", 0)  # no room at all: every invoke is throttled
    with pytest.raises(lam.exceptions.TooManyRequestsException) as exc:
        lam.invoke(FunctionName="trivial", Payload=b"{}")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert exc.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
