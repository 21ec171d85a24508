"""How the endpoint is set up from configuration: serve's ``localaws:`` section and the demo."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from eventrelay.config import load_config
from eventrelay.config.model import Config
from eventrelay.config.store import merge_api_entities
from eventrelay.demo import prepare
from eventrelay.localaws.server import LocalAwsServer, start_from_config
from tests.localaws.conftest import NO_RETRY

ENV_NAMES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))


def config_with_localaws(functions_dir: Path) -> Config:
    return Config.model_validate(
        {
            "workspace": {"id": "ws_cfg_1"},
            "sources": [{"name": "web", "write_key": "k" * 32}],
            "destinations": [
                {
                    "name": "d1",
                    "settings": {
                        "lambda": "hello",
                        "region": "us-west-2",
                        "role_address": "arn:aws:iam::123456789012:role/service/eventrelay-invoke",
                    },
                }
            ],
            "localaws": {"functions_dir": str(functions_dir)},
        }
    )


async def test_config_localaws_discovers_handlers_trusts_workspace_and_exports_endpoints(
    tmp_path: Path, clean_env: None
) -> None:
    (tmp_path / "hello.py").write_text("def handler(event, context):\n    return {'hi': event['n']}\n")
    (tmp_path / "helper.py").write_text("X = 1\n")
    server = await start_from_config(config_with_localaws(tmp_path))
    try:
        assert sorted(server.registry.functions) == ["hello"]
        assert os.environ["AWS_ENDPOINT_URL_STS"] == server.url == os.environ["AWS_ENDPOINT_URL_LAMBDA"]
        assert os.environ["AWS_ACCESS_KEY_ID"]  # local-only base credentials, none being configured
        import asyncio

        def call() -> Any:  # botocore finds endpoint and credentials from the environment alone
            sts = boto3.client("sts", region_name="us-west-2", config=NO_RETRY)
            creds = sts.assume_role(
                RoleArn="arn:aws:iam::123456789012:role/service/eventrelay-invoke",
                RoleSessionName="cfg",
                ExternalId="ws_cfg_1",
            )["Credentials"]
            lam = boto3.client(
                "lambda",
                region_name="us-west-2",
                config=NO_RETRY,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
            return json.loads(lam.invoke(FunctionName="hello", Payload=b'{"n": 7}')["Payload"].read())

        assert await asyncio.to_thread(call) == {"hi": 7}
    finally:
        await server.stop()
    assert "AWS_ENDPOINT_URL_STS" not in os.environ and "AWS_ACCESS_KEY_ID" not in os.environ


async def test_endpoints_from_the_environment_are_honoured(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    server = await start_from_config(config_with_localaws(tmp_path))
    try:
        assert "AWS_ENDPOINT_URL_STS" not in os.environ
        assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAFROMENV"
    finally:
        await server.stop()


async def demo_config(data_dir: Path) -> tuple[Config, LocalAwsServer]:
    """What ``eventrelay serve`` without --config runs: the demo's file and store, its local endpoint."""
    config = merge_api_entities(load_config(prepare(data_dir)))
    return config, await start_from_config(config)


async def test_demo_keeps_its_identity_and_the_users_handler_across_restarts(tmp_path: Path, clean_env: None) -> None:
    config, server = await demo_config(tmp_path / "data")
    await server.stop()
    for private in ("demo.yaml", "api-entities.json"):
        assert stat.S_IMODE((tmp_path / "data" / private).stat().st_mode) == 0o600
    key = config.sources[0].write_key.get_secret_value()
    token = config.admin.token
    assert len(key) >= 32 and token is not None and len(token.get_secret_value()) >= 32
    assert config.workspace is not None
    dest = config.destinations[0].settings
    assert dest.endpoint_url == server.url and dest.log_type == "None"
    assert dest.role_address == "arn:aws:iam::123456789012:role/eventrelay-demo"
    handler = tmp_path / "data" / "functions" / "handler.py"
    handler.write_text(handler.read_text() + "\n# edited by the user\n")

    again, server2 = await demo_config(tmp_path / "data")
    await server2.stop()
    assert server2.url == server.url  # the destination's endpoint_url still reaches it
    assert again.sources[0].write_key.get_secret_value() == key
    assert again.admin.token is not None and again.admin.token.get_secret_value() == token.get_secret_value()
    assert again.workspace is not None and again.workspace.id == config.workspace.id
    assert "# edited by the user" in handler.read_text()


async def test_a_demo_data_directory_of_an_earlier_version_keeps_its_write_key(tmp_path: Path, clean_env: None) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "demo-identity.json").write_text(json.dumps({"workspace_id": "ws_old", "write_key": "k" * 43}))
    config = load_config(prepare(data))
    assert config.workspace is not None and config.workspace.id == "ws_old"
    assert config.sources[0].write_key.get_secret_value() == "k" * 43


async def test_demo_role_trusts_the_workspace_id_only(tmp_path: Path, clean_env: None) -> None:
    config, server = await demo_config(tmp_path / "data")
    try:
        role = server.roles.by_arn(config.destinations[0].settings.role_address)
        assert role is not None and config.workspace is not None
        assert role.external_id_ok(config.workspace.id)
        assert not role.external_id_ok("someone-else") and not role.external_id_ok(None)
    finally:
        await server.stop()


def test_an_edited_handler_runs_on_the_next_invoke(tmp_path: Path) -> None:
    from tests.localaws.conftest import ServerThread, assume, lambda_client, local_settings

    code = tmp_path / "edit.py"
    code.write_text("def handler(event, context):\n    return 'first'\n")
    st = ServerThread(local_settings(functions_dir=str(tmp_path), functions={"edit": {"handler": "edit.handler"}}))
    try:
        lam = lambda_client(st.url, assume(st.url))
        assert lam.invoke(FunctionName="edit")["Payload"].read() == b'"first"'
        code.write_text("def handler(event, context):\n    return 'second'\n")
        stamp = code.stat().st_mtime + 2
        os.utime(code, (stamp, stamp))
        deadline, seen = time.monotonic() + 20, b""  # the file is checked at most every 0.5 s
        while seen != b'"second"' and time.monotonic() < deadline:
            seen = lam.invoke(FunctionName="edit")["Payload"].read()
            time.sleep(0.1)
        assert seen == b'"second"'
    finally:
        st.stop()
