"""Fixtures: moto (STS, IAM auth on), a recording Invoke server, and destinations wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from eventrelay.destinations.aws_lambda.credentials import RoleCredentialCache
from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
from eventrelay.destinations.http_client import HttpTransport
from tests.destinations.lambda_doubles import (
    EXTERNAL_ID,
    IamUser,
    MakeDestination,
    MotoServer,
    RecordingLambda,
    fresh_session,
    moto_with_iam,
    settings,
)
from tests.support.awsenv import isolate_aws_env


@pytest.fixture(scope="session")
def moto() -> Iterator[tuple[MotoServer, IamUser]]:
    with moto_with_iam() as found:
        yield found


@pytest.fixture
async def lambda_server() -> AsyncIterator[RecordingLambda]:
    server = RecordingLambda()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def aws_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    moto: tuple[MotoServer, IamUser],
    lambda_server: RecordingLambda,
) -> IamUser:
    """Base credentials of the IAM user in the environment; STS -> moto, Lambda -> recorder, both
    through botocore's own endpoint variables."""
    server, user = moto
    isolate_aws_env(
        monkeypatch,
        tmp_path,
        access_key=user.access_key,
        secret_key=user.secret_key,
        sts_url=server.url,
        lambda_url=lambda_server.url,
    )
    return user


@pytest.fixture
async def make_destination(aws_env: IamUser) -> AsyncIterator[MakeDestination]:
    """Build destinations with a fresh botocore session (reads the patched environment) and a
    fresh credential cache (exposed as ``.cache`` on the fixture's result)."""
    made: list[AwsLambdaDestination] = []

    def make(
        external_id: str | None = EXTERNAL_ID,
        cache: RoleCredentialCache | None = None,
        transport: HttpTransport | None = None,
        **overrides: Any,
    ) -> AwsLambdaDestination:
        dest = AwsLambdaDestination(
            "lambda-test",
            settings(**overrides),
            external_id=external_id,
            botocore_session=fresh_session(),
            credential_cache=cache or RoleCredentialCache(),
            transport=transport,
        )
        made.append(dest)
        return dest

    yield make
    for dest in made:
        await dest.close()
