"""STS AssumeRole against moto with IAM authentication on (an independent STS implementation)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from eventrelay.core.outcome import Category, Verdict
from eventrelay.destinations.aws_lambda.credentials import (
    AssumeRequest,
    RoleCredentialCache,
    SessionCredentials,
)
from tests.destinations.lambda_doubles import (
    EXTERNAL_ID,
    REGION,
    ROLE_ARN,
    IamUser,
    MakeDestination,
    MotoServer,
    RecordingLambda,
    botocore_authorization,
)
from tests.support.send import request_for

EVENT = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-1"}
BODY = orjson.dumps(EVENT)


async def test_right_external_id_assumes_the_role_and_signs_the_invoke_with_its_session(
    make_destination: MakeDestination, lambda_server: RecordingLambda, aws_env: IamUser
) -> None:
    cache = RoleCredentialCache()
    dest = make_destination(cache=cache)

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert outcome.category is Category.DELIVERED, outcome
    assert cache.assume_calls == 1
    [rec] = lambda_server.requests
    session = await _session_of(dest, cache)
    assert session.access_key != aws_env.access_key  # the role's session, not the base user
    assert rec.access_key == session.access_key
    assert rec.headers["x-amz-security-token"] == session.token
    assert rec.headers["authorization"] == botocore_authorization(
        rec, session.access_key, session.secret_key, session.token, REGION
    )


async def test_wrong_external_id_is_access_denied_and_nothing_is_invoked(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    dest = make_destination(external_id="ws_someone_else")

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert outcome.category is Category.ACCESS_DENIED
    assert outcome.verdict is Verdict.BACKOFF_DESTINATION
    assert outcome.error_type == "AccessDenied"
    assert outcome.status_code == 403
    assert lambda_server.requests == []


async def test_wrong_secret_key_is_invalid_credentials(
    make_destination: MakeDestination, lambda_server: RecordingLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-of-this-key")
    dest = make_destination()

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert outcome.category is Category.INVALID_CREDENTIALS
    assert outcome.verdict is Verdict.BACKOFF_DESTINATION
    assert outcome.error_type == "SignatureDoesNotMatch"
    assert lambda_server.requests == []
    assert "not-the-secret" not in repr(outcome)


async def test_unknown_access_key_is_invalid_credentials(
    make_destination: MakeDestination, lambda_server: RecordingLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNUNKNOWN00")
    dest = make_destination()

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert outcome.category is Category.INVALID_CREDENTIALS
    assert outcome.error_type == "InvalidClientTokenId"
    assert lambda_server.requests == []


async def test_no_base_credentials_is_invalid_credentials(
    make_destination: MakeDestination, lambda_server: RecordingLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    dest = make_destination()

    outcome = await dest.send(request_for(EVENT), 10.0)

    assert outcome.category is Category.INVALID_CREDENTIALS
    assert outcome.error_type == "NoCredentials"


async def test_concurrent_sends_share_one_assume_role_call(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    cache = RoleCredentialCache()
    first, second = make_destination(cache=cache), make_destination(cache=cache)

    outcomes = await asyncio.gather(*(d.send(request_for(EVENT), 10.0) for d in [first, second] * 25))

    assert {o.category for o in outcomes} == {Category.DELIVERED}
    assert cache.assume_calls == 1
    assert len({r.access_key for r in lambda_server.requests}) == 1


async def test_session_is_refreshed_shortly_before_it_expires(
    make_destination: MakeDestination, lambda_server: RecordingLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = RoleCredentialCache()
    dest = make_destination(cache=cache)
    assert (await dest.send(request_for(EVENT), 10.0)).ok
    session = await _session_of(dest, cache)

    # 56 minutes later the 1-hour session is inside the 5-minute refresh margin
    real_time = __import__("time").time
    monkeypatch.setattr("eventrelay.destinations.aws_lambda.credentials.time.time", lambda: real_time() + 56 * 60)
    assert (await dest.send(request_for(EVENT), 10.0)).ok

    assert cache.assume_calls == 2
    assert session.expires_at - real_time() > 50 * 60


async def test_no_workspace_uses_the_source_as_external_id(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    dest = make_destination(external_id=None)

    right = await dest.send(request_for(EVENT, source=EXTERNAL_ID), 10.0)
    wrong = await dest.send(request_for(EVENT, source="web"), 10.0)

    assert right.category is Category.DELIVERED
    assert wrong.category is Category.ACCESS_DENIED


def test_moto_enforces_iam_auth(moto: tuple[MotoServer, IamUser]) -> None:
    """Guard: the STS double really checks signatures (else the tests above prove nothing)."""
    import botocore.exceptions
    import botocore.session

    server, user = moto
    sts = botocore.session.Session().create_client(
        "sts",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=user.access_key,
        aws_secret_access_key="wrong",
    )
    with pytest.raises(botocore.exceptions.ClientError, match="SignatureDoesNotMatch"):
        sts.get_caller_identity()


async def _session_of(dest: object, cache: RoleCredentialCache) -> SessionCredentials:
    req = AssumeRequest(ROLE_ARN, EXTERNAL_ID, "eventrelay-lambda", REGION, dest._sts_endpoint)  # type: ignore[attr-defined]
    return await cache.get(dest._botocore_session, req)  # type: ignore[attr-defined]
