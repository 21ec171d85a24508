"""A local AWS endpoint in a background thread (its own event loop), and boto3 clients pointed at it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from eventrelay.config.model import LocalAws
from eventrelay.localaws.server import LocalAwsServer

FUNCTIONS_DIR = Path(__file__).parent / "functions"
ACCOUNT = "123456789012"
REGION = "us-west-2"
BASE_KEY, BASE_SECRET = "AKIAEXAMPLEBASE00001", "base-secret-for-tests-only-0123456789abcd"
WORKSPACE = "ws_test_123"
NO_RETRY = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60, connect_timeout=10)


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def local_settings(**overrides: Any) -> LocalAws:
    data: dict[str, Any] = {
        "functions_dir": str(FUNCTIONS_DIR),
        "account_id": ACCOUNT,
        "region": REGION,
        "functions": {
            "echo": {"handler": "fns.echo", "versions": ["1", "2"], "aliases": {"live": "2"}},
            "printer": {"handler": "fns.printer"},
            "raiser": {"handler": "fns.raiser"},
            "sleeper": {"handler": "fns.sleeper", "timeout": 1, "concurrency": 1},
            "exiter": {"handler": "fns.exiter", "concurrency": 1},
            "chatty": {"handler": "fns.chatty"},
            "big": {"handler": "fns.big"},
            "trivial": {"handler": "fns.trivial"},
            "broken": {"handler": "fns.does_not_exist"},
        },
        "roles": {
            "invoker": {"external_id": WORKSPACE},
            "multi": {"external_id": ["first-id", "second-id"]},
            "echo-only": {"external_id": WORKSPACE, "allow_invoke": ["echo"]},
            "arn-only": {
                "external_id": WORKSPACE,
                "allow_invoke": [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo"],
            },
            "other-principal": {
                "external_id": WORKSPACE,
                "trusted_principals": ["arn:aws:iam::999999999999:root"],
            },
        },
        "users": {BASE_KEY: BASE_SECRET},
    }
    data.update(overrides)
    return LocalAws.model_validate(data)


class ServerThread:
    """Runs a LocalAwsServer on an event loop in a daemon thread, so tests can call boto3 synchronously."""

    def __init__(self, settings: LocalAws, echo: Callable[[str, bytes], None] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: LocalAwsServer = self.call(self._start(settings, echo))

    async def _start(self, settings: LocalAws, echo: Callable[[str, bytes], None] | None) -> LocalAwsServer:
        return await LocalAwsServer(settings, echo=echo).start()

    def call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=60)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def local_aws() -> Iterator[ServerThread]:
    st = ServerThread(local_settings())
    yield st
    st.stop()


def sts_client(url: str, key: str = BASE_KEY, secret: str = BASE_SECRET, token: str | None = None) -> Any:
    return boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=NO_RETRY,
    )


def lambda_client(url: str, creds: dict[str, Any]) -> Any:
    return boto3.client(
        "lambda",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=NO_RETRY,
    )


def assume(url: str, role: str = "invoker", external_id: str | None = WORKSPACE, **kw: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"RoleArn": role_arn(role), "RoleSessionName": "eventrelay-test", **kw}
    if external_id is not None:
        params["ExternalId"] = external_id
    creds: dict[str, Any] = sts_client(url).assume_role(**params)["Credentials"]
    return creds


@pytest.fixture(scope="module")
def lam(local_aws: ServerThread) -> Any:
    return lambda_client(local_aws.url, assume(local_aws.url))
