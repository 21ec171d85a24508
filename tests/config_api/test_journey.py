"""A new user's way, on the local AWS endpoint: from a config without destinations to a delivering
destination. Generate the trust policy, create the destination through the Config API, generate the
permission policy, ``check`` passes (admin API), ``send`` reaches the handler, and an event sent to
the Tracking API is delivered by the running engine."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventrelay.config import load_config
from eventrelay.config.model import LocalAws, LocalAwsRole
from eventrelay.localaws.iam import Roles
from eventrelay.localaws.server import LocalAwsServer
from tests.support.awsenv import isolate_aws_env
from tests.support.cli import run_cli_in_thread
from tests.support.localaws import handler_functions, local_aws_endpoint

from .conftest import FILE_KEY, ROLE, TOKEN, StartRuntime, lambda_destination

DELIVERY_DEADLINE = 60.0  # seconds: first invoke starts an awslambdaric process on a loaded 2-core machine


@pytest.fixture
async def local_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalAwsServer]:
    isolate_aws_env(monkeypatch, tmp_path, access_key="AKIATESTEVENTRELAY02", secret_key="test-secret-not-real")
    seen = tmp_path / "seen"
    seen.mkdir()
    handler = (
        "import json, pathlib\n"
        "def handle(event, context):\n"
        f"    pathlib.Path({str(seen)!r}, event['messageId']).write_text(json.dumps(event))\n"
        "    return {'ok': True}\n"
    )
    async with local_aws_endpoint(handler_functions(tmp_path, handler, "my-fn"), monkeypatch) as server:
        yield server


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, out, err = await run_cli_in_thread(capsys, *argv)
    return code, out + err


async def test_from_empty_config_to_delivering_destination(
    tmp_path: Path, local_aws: LocalAwsServer, start_runtime: StartRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "eventrelay.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "workspace": {"id": "ws_123"},
                "storage": {"path": str(tmp_path / "data")},
                "admin": {"token": TOKEN},
                "sources": [{"name": "web", "write_key": FILE_KEY}],
            }
        ),
        encoding="utf-8",
    )

    # 1. The trust relationship, before any destination exists (principal: who we run as).
    code, out = await cli(capsys, "aws", "trust-policy", "--config", str(path))
    assert code == 0, out
    trust_doc = json.loads(out[: out.rindex("}") + 1])

    # 2. Create the destination through the Config API of the running eventrelay.
    runtime, client = await start_runtime(load_config(path))
    created = await client.post("/api/v1/config/destinations", lambda_destination("lambda-prod"))
    assert created.status == 201, created.body

    # Before the role exists the check fails, with the category and the fix.
    report = (await client.post("/api/v1/destinations/lambda-prod/check")).json()
    assert report["ok"] is False
    assert report["functions"][0]["category"] == "access_denied"
    assert "ws_123" in report["functions"][0]["hint"]["fix"]

    # 3. The permission policy now includes the API-created destination; "create" the role from both.
    code, out = await cli(capsys, "aws", "policy", "--config", str(path))
    assert code == 0, out
    policy_doc = json.loads(out)
    assert policy_doc["Statement"][0]["Resource"] == ["arn:aws:lambda:us-west-2:123456789012:function:my-fn:live"]
    (statement,) = trust_doc["Statement"]
    role = LocalAwsRole(
        trusted_principals=[statement["Principal"]["AWS"]],
        external_id=statement["Condition"]["StringEquals"]["sts:ExternalId"],
        allow_invoke=policy_doc["Statement"][0]["Resource"],
    )
    local_aws.sts_api.roles = Roles.from_config(None, LocalAws(roles={ROLE.rsplit("/", 1)[1]: role}))

    # 4. check passes (admin API and CLI).
    report = (await client.post("/api/v1/destinations/lambda-prod/check")).json()
    assert report == {"destination": "lambda-prod", "ok": True, "functions": [report["functions"][0]]}
    assert report["functions"][0]["category"] == "delivered"
    code, out = await cli(capsys, "check", "--config", str(path))
    assert code == 0, out
    assert "lambda-prod  my-fn:live: OK" in out

    # 5. send reaches the handler.
    code, out = await cli(capsys, "send", "--config", str(path), "--destination", "lambda-prod", "--json")
    assert code == 0, out
    sent = json.loads(out)["you_sent"]
    assert await _handled(tmp_path, sent["messageId"])

    # 6. And events sent to the Tracking API are delivered by the running engine.
    basic = base64.b64encode(f"{FILE_KEY}:".encode()).decode()
    answer = await client.post(
        "/v1/track",
        {"userId": "u1", "event": "Signed Up", "messageId": "journey-1"},
        token=None,
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status == 200, answer.body
    handled = await _handled(tmp_path, "journey-1")
    assert handled["event"] == "Signed Up" and handled["type"] == "track"
    await runtime.stop()


async def _handled(tmp_path: Path, message_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DELIVERY_DEADLINE
    file = tmp_path / "seen" / message_id
    while time.monotonic() < deadline:
        if file.exists():
            event: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
            return event
        await asyncio.sleep(0.1)
    raise AssertionError(f"the handler did not see {message_id} within {DELIVERY_DEADLINE:g} s")
