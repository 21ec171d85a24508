"""STS AssumeRole (trust policy, External ID) and Invoke authentication/authorisation, through boto3."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.localaws.conftest import (
    ACCOUNT,
    BASE_KEY,
    BASE_SECRET,
    WORKSPACE,
    ServerThread,
    assume,
    lambda_client,
    local_settings,
    role_arn,
    sts_client,
)


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_assume_role_with_the_right_external_id_returns_session_credentials(local_aws: ServerThread) -> None:
    before = time.time()
    r = sts_client(local_aws.url).assume_role(
        RoleArn=role_arn("invoker"), RoleSessionName="s1", ExternalId=WORKSPACE, DurationSeconds=900
    )
    creds = r["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert creds["SecretAccessKey"] and creds["SessionToken"]
    assert before + 890 <= creds["Expiration"].timestamp() <= time.time() + 910
    assert r["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/invoker/s1"
    assert r["AssumedRoleUser"]["AssumedRoleId"].endswith(":s1")


@pytest.mark.parametrize("external_id", ["wrong-id", None])
def test_wrong_or_missing_external_id_is_access_denied(local_aws: ServerThread, external_id: str | None) -> None:
    with pytest.raises(ClientError) as exc:
        assume(local_aws.url, external_id=external_id)
    assert code_of(exc) == "AccessDenied"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/{BASE_KEY} is not authorized to perform: sts:AssumeRole "
        f"on resource: {role_arn('invoker')}"
    )


def test_a_role_may_trust_a_list_of_external_ids(local_aws: ServerThread) -> None:
    assert assume(local_aws.url, role="multi", external_id="first-id")["AccessKeyId"]
    assert assume(local_aws.url, role="multi", external_id="second-id")["AccessKeyId"]
    with pytest.raises(ClientError) as exc:
        assume(local_aws.url, role="multi", external_id=WORKSPACE)
    assert code_of(exc) == "AccessDenied"


def test_undeclared_role_or_untrusted_principal_is_access_denied(local_aws: ServerThread) -> None:
    for role in ("no-such-role", "other-principal"):
        with pytest.raises(ClientError) as exc:
            assume(local_aws.url, role=role)
        assert code_of(exc) == "AccessDenied"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"RoleSessionName": "x"}, "roleSessionName"),
        ({"RoleSessionName": "has space"}, "roleSessionName"),
        ({"DurationSeconds": 899}, "durationSeconds"),
        ({"DurationSeconds": 43201}, "durationSeconds"),
        ({"ExternalId": "a"}, "externalId"),
    ],
)
def test_invalid_parameters_are_validation_errors(
    local_aws: ServerThread, params: dict[str, Any], fragment: str
) -> None:
    import boto3
    from botocore.config import Config

    full = {"RoleArn": role_arn("invoker"), "RoleSessionName": "ok-name", "ExternalId": WORKSPACE, **params}
    sts = boto3.client(
        "sts",
        region_name="us-west-2",
        endpoint_url=local_aws.url,
        aws_access_key_id=BASE_KEY,
        aws_secret_access_key=BASE_SECRET,
        config=Config(parameter_validation=False),
    )
    with pytest.raises(ClientError) as exc:  # botocore's own checks are off: the server must refuse
        sts.assume_role(**full)
    assert code_of(exc) == "ValidationError"
    assert fragment in exc.value.response["Error"]["Message"]


def test_unknown_base_access_key_is_invalid_client_token_id(local_aws: ServerThread) -> None:
    with pytest.raises(ClientError) as exc:
        sts_client(local_aws.url, key="AKIAUNKNOWNKEY000000").assume_role(
            RoleArn=role_arn("invoker"), RoleSessionName="s1", ExternalId=WORKSPACE
        )
    assert code_of(exc) == "InvalidClientTokenId"


def test_wrong_base_secret_is_signature_does_not_match(local_aws: ServerThread) -> None:
    with pytest.raises(ClientError) as exc:
        sts_client(local_aws.url, secret="not-the-secret").assume_role(
            RoleArn=role_arn("invoker"), RoleSessionName="s1", ExternalId=WORKSPACE
        )
    assert code_of(exc) == "SignatureDoesNotMatch"


def test_get_caller_identity_names_the_assumed_role(local_aws: ServerThread) -> None:
    creds = assume(local_aws.url)
    who = sts_client(local_aws.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    ident = who.get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/invoker/eventrelay-test"
    assert ident["Account"] == ACCOUNT


def test_invoke_with_a_tampered_secret_is_invalid_signature(local_aws: ServerThread) -> None:
    creds = dict(assume(local_aws.url))
    creds["SecretAccessKey"] = "X" + creds["SecretAccessKey"][1:]
    with pytest.raises(ClientError) as exc:
        lambda_client(local_aws.url, creds).invoke(FunctionName="echo", Payload=b"{}")
    assert code_of(exc) == "InvalidSignatureException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_invoke_with_an_access_key_it_never_issued_is_unrecognized_client(local_aws: ServerThread) -> None:
    creds = {"AccessKeyId": "ASIAAAAAAAAAAAAAAAAA", "SecretAccessKey": "s" * 40, "SessionToken": "t" * 100}
    with pytest.raises(ClientError) as exc:
        lambda_client(local_aws.url, creds).invoke(FunctionName="echo", Payload=b"{}")
    assert code_of(exc) == "UnrecognizedClientException"
    assert exc.value.response["Error"]["Message"] == "The security token included in the request is invalid."


def test_invoke_with_a_wrong_session_token_is_unrecognized_client(local_aws: ServerThread) -> None:
    creds = dict(assume(local_aws.url))
    creds["SessionToken"] = creds["SessionToken"][:-4] + "AAAA"
    with pytest.raises(ClientError) as exc:
        lambda_client(local_aws.url, creds).invoke(FunctionName="echo", Payload=b"{}")
    assert code_of(exc) == "UnrecognizedClientException"


@pytest.fixture
def later_clock(local_aws: ServerThread) -> Iterator[ServerThread]:
    original = local_aws.server.sessions.clock
    yield local_aws
    local_aws.server.sessions.clock = original


def test_invoke_with_expired_session_credentials_is_expired_token(later_clock: ServerThread) -> None:
    creds = assume(later_clock.url, DurationSeconds=900)
    lam = lambda_client(later_clock.url, creds)
    assert lam.invoke(FunctionName="echo", Payload=b"{}")["StatusCode"] == 200
    later_clock.server.sessions.clock = lambda: time.time() + 901
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="echo", Payload=b"{}")
    assert code_of(exc) == "ExpiredTokenException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_role_without_permission_on_the_function_is_access_denied(local_aws: ServerThread) -> None:
    lam = lambda_client(local_aws.url, assume(local_aws.url, role="echo-only"))
    assert lam.invoke(FunctionName="echo", Payload=b"{}")["StatusCode"] == 200
    assert lam.invoke(FunctionName="echo:live", Payload=b"{}")["StatusCode"] == 200  # a bare name: any qualifier
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="printer", Payload=b"{}")
    assert code_of(exc) == "AccessDeniedException"
    assert exc.value.response["Error"]["Message"].startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/echo-only/eventrelay-test is not authorized to perform: "
        f"lambda:InvokeFunction on resource: arn:aws:lambda:us-west-2:{ACCOUNT}:function:printer"
    )


def test_permission_on_the_unqualified_arn_does_not_cover_qualifiers(local_aws: ServerThread) -> None:
    lam = lambda_client(local_aws.url, assume(local_aws.url, role="arn-only"))
    assert lam.invoke(FunctionName="echo", Payload=b"{}")["StatusCode"] == 200
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="echo", Qualifier="live", Payload=b"{}")
    assert code_of(exc) == "AccessDeniedException"


def test_permission_is_checked_before_existence(local_aws: ServerThread) -> None:
    lam = lambda_client(local_aws.url, assume(local_aws.url, role="echo-only"))
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert code_of(exc) == "AccessDeniedException"


def test_base_credentials_cannot_invoke_by_default(local_aws: ServerThread) -> None:
    base = {"AccessKeyId": BASE_KEY, "SecretAccessKey": BASE_SECRET, "SessionToken": None}
    with pytest.raises(ClientError) as exc:
        lambda_client(local_aws.url, base).invoke(FunctionName="echo", Payload=b"{}")
    assert code_of(exc) == "AccessDeniedException"


def test_without_users_any_base_key_may_assume_a_role_and_base_invoke_can_be_allowed() -> None:
    st = ServerThread(
        local_settings(users={}, allow_base_credentials_invoke=True, functions={"trivial": {"handler": "fns.trivial"}})
    )
    try:
        creds = sts_client(st.url, key="AKIAANYTHING", secret="anything").assume_role(
            RoleArn=role_arn("invoker"), RoleSessionName="s1", ExternalId=WORKSPACE
        )["Credentials"]
        assert creds["AccessKeyId"].startswith("ASIA")
        base = {"AccessKeyId": "AKIAANYTHING", "SecretAccessKey": "anything", "SessionToken": None}
        r = lambda_client(st.url, base).invoke(FunctionName="trivial", Payload=b'{"a": 1}')
        assert r["Payload"].read() == b'{"a": 1}'
    finally:
        st.stop()


def test_unsigned_invoke_is_refused(local_aws: ServerThread) -> None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{local_aws.url}/2015-03-31/functions/echo/invocations", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 403
    assert exc.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
