"""The generated documents, parsed back and evaluated by the local STS/IAM over the wire (botocore):
the trust policy admits the right External ID and refuses a wrong or missing one; the permission
policy allows exactly the (qualified) functions eventrelay invokes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from eventrelay.config.model import LocalAws, LocalAwsRole
from eventrelay.localaws.iam import Roles
from eventrelay.localaws.server import LocalAwsServer
from tests.support.awsenv import isolate_aws_env
from tests.support.cli import run_cli_in_thread
from tests.support.localaws import handler_functions, local_aws_endpoint

from .conftest import ROLE, dest

ACCOUNT = "123456789012"  # the local endpoint's default account, as in ROLE


@pytest.fixture
async def local_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalAwsServer]:
    isolate_aws_env(monkeypatch, tmp_path, access_key="AKIATESTEVENTRELAY01", secret_key="test-secret-not-real")
    settings = handler_functions(tmp_path, "def handle(event, context):\n    return {}\n", "my-fn", "users-fn")
    async with local_aws_endpoint(settings, monkeypatch) as server:
        yield server


def load_documents(server: LocalAwsServer, trust_doc: dict[str, Any], policy_doc: dict[str, Any]) -> None:
    """Give the local IAM the role as the documents describe it (only the constructs we generate)."""
    (trust,) = trust_doc["Statement"]
    assert (trust["Effect"], trust["Action"]) == ("Allow", "sts:AssumeRole")
    assert list(trust["Condition"]) == ["StringEquals"]
    assert list(trust["Condition"]["StringEquals"]) == ["sts:ExternalId"]
    principal = trust["Principal"]["AWS"]
    allow, *optional = policy_doc["Statement"]
    assert (allow["Effect"], allow["Action"]) == ("Allow", "lambda:InvokeFunction")
    assert [(o["Effect"], o["Action"]) for o in optional] in ([], [("Allow", "lambda:GetFunctionConcurrency")])
    role = LocalAwsRole(
        trusted_principals=[principal] if isinstance(principal, str) else principal,
        external_id=trust["Condition"]["StringEquals"]["sts:ExternalId"],
        allow_invoke=allow["Resource"],
        allow_get_concurrency=optional[0]["Resource"] if optional else [],
    )
    server.sts_api.roles = Roles.from_config(None, LocalAws(roles={ROLE.rsplit("/", 1)[1]: role}))


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = await run_cli_in_thread(capsys, *argv)
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


async def assume(external_id: str | None) -> dict[str, Any] | str:
    """Session credentials, or the error code."""

    def call() -> dict[str, Any] | str:
        sts: Any = botocore.session.get_session().create_client("sts", region_name="us-west-2")
        kwargs = {"RoleArn": ROLE, "RoleSessionName": "eventrelay-test"}
        if external_id is not None:
            kwargs["ExternalId"] = external_id
        try:
            creds: dict[str, Any] = sts.assume_role(**kwargs)["Credentials"]
            return creds
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    return await asyncio.to_thread(call)


async def dry_run(creds: dict[str, Any], function: str, qualifier: str | None) -> int | str:
    def call() -> int | str:
        client: Any = botocore.session.get_session().create_client(
            "lambda",
            region_name="us-west-2",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        kwargs = {"FunctionName": function, "InvocationType": "DryRun"}
        if qualifier:
            kwargs["Qualifier"] = qualifier
        try:
            return int(client.invoke(**kwargs)["StatusCode"])
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    return await asyncio.to_thread(call)


async def test_trust_policy_admits_only_the_right_external_id(
    local_aws: LocalAwsServer, write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "workspace": {"id": "ws_123"},
        "sources": [{"name": "web", "write_key": "k" * 20}],
        "destinations": [dest(lambda_="my-fn:live", functions={"identify": "users-fn"})],
    }
    path = str(write_config(config))
    # No --principal: the trusted principal is who we run as (local STS GetCallerIdentity).
    trust_doc = await cli(capsys, "aws", "trust-policy", "--config", path)
    assert trust_doc["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:user/local"}
    policy_doc = await cli(capsys, "aws", "policy", "--config", path)
    load_documents(local_aws, trust_doc, policy_doc)

    assert await assume("ws_wrong") == "AccessDenied"
    assert await assume(None) == "AccessDenied"
    creds = await assume("ws_123")
    assert isinstance(creds, dict)

    assert await dry_run(creds, "my-fn", "live") == 204
    assert await dry_run(creds, "users-fn", None) == 204
    # Least privilege: the alias was granted, not $LATEST nor other versions/functions.
    assert await dry_run(creds, "my-fn", None) == "AccessDeniedException"
    assert await dry_run(creds, "my-fn", "1") == "AccessDeniedException"
    assert await dry_run(creds, "users-fn", "live") == "AccessDeniedException"


async def test_list_of_external_ids_admits_each_source(
    local_aws: LocalAwsServer, write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "sources": [{"name": "web", "write_key": "k" * 20}, {"name": "ios", "write_key": "j" * 20}],
        "destinations": [dest()],
    }
    path = str(write_config(config))
    trust_doc = await cli(
        capsys, "aws", "trust-policy", "--config", path, "--principal", f"arn:aws:iam::{ACCOUNT}:user/local"
    )
    assert trust_doc["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] == ["web", "ios"]
    load_documents(local_aws, trust_doc, await cli(capsys, "aws", "policy", "--config", path))
    assert isinstance(await assume("web"), dict)
    assert isinstance(await assume("ios"), dict)
    assert await assume("android") == "AccessDenied"
    assert await assume(None) == "AccessDenied"


async def test_trust_policy_for_another_principal_refuses_us(
    local_aws: LocalAwsServer, write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_config({"workspace": {"id": "ws_123"}, "destinations": [dest()]}))
    trust_doc = await cli(
        capsys,
        "aws",
        "trust-policy",
        "--config",
        path,
        "--principal",
        f"arn:aws:iam::{ACCOUNT}:role/someone-else",
    )
    load_documents(local_aws, trust_doc, await cli(capsys, "aws", "policy", "--config", path))
    assert await assume("ws_123") == "AccessDenied"
