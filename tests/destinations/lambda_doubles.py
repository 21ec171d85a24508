"""Test doubles for the aws_lambda destination: moto (STS with IAM auth) and a recording Invoke server.

- ``MotoServer``: ``python -m moto.server`` as a subprocess; ``setup_iam`` creates an IAM user with
  an access key and a role whose trust policy requires an ``sts:ExternalId``, then turns IAM
  authentication on (``POST /moto-api/reset-auth`` with body 0).
  ``moto_with_iam`` runs one for a fixture's lifetime.
- ``RecordingLambda``: an aiohttp server speaking Lambda's Invoke wire protocol; it records every
  request and answers from a script of responses (or a default 200).
- ``botocore_authorization``: botocore's own SigV4 signature of a recorded request, to prove the
  request was signed with given credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import botocore.auth
import botocore.credentials
import botocore.session
from aiohttp import web
from botocore.awsrequest import AWSRequest

from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings
from tests.support.process import free_port, stop_process

REGION = "us-west-2"
ACCOUNT = "123456789012"
EXTERNAL_ID = "ws_test_123"
USER = "eventrelay"
ROLE = "eventrelay-invoke"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"


MakeDestination = Callable[..., AwsLambdaDestination]


def settings(**overrides: Any) -> AwsLambdaSettings:
    values: dict[str, Any] = {"lambda": "my-fn", "region": REGION, "role_address": ROLE_ARN}
    values.update(overrides)
    return AwsLambdaSettings.model_validate(values)


_LOADER: Any = None


def fresh_session() -> Any:
    """A new botocore session (reads the environment afresh) sharing one model loader, so each
    test does not re-read botocore's service definitions."""
    global _LOADER
    session = botocore.session.Session()
    if _LOADER is None:
        _LOADER = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _LOADER)
    return session


@dataclass
class IamUser:
    access_key: str
    secret_key: str = field(repr=False)


class MotoServer:
    """moto in server mode, with IAM authentication on once ``setup_iam`` ran."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + deadline
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2).close()
                return
            except OSError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10)
            self.proc = None

    def setup_iam(self, external_id: str = EXTERNAL_ID) -> IamUser:
        """User + key + role trusting that user with ``sts:ExternalId``; then IAM auth on."""
        iam = botocore.session.get_session().create_client(
            "iam",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="AKIASETUPSETUPSETUP0",
            aws_secret_access_key="setup-secret",
        )
        iam.create_user(UserName=USER)
        iam.put_user_policy(
            UserName=USER,
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName=USER)["AccessKey"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{USER}"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                }
            ],
        }
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        iam.close()
        req = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(req, timeout=10).close()
        return IamUser(key["AccessKeyId"], key["SecretAccessKey"])


@contextlib.contextmanager
def moto_with_iam() -> Iterator[tuple[MotoServer, IamUser]]:
    """A started moto server with IAM authentication on and its IAM user (``setup_iam``); stopped on exit."""
    server = MotoServer()
    server.start()
    try:
        yield server, server.setup_iam()
    finally:
        server.stop()


@dataclass
class Recorded:
    method: str
    path: str  # raw, as on the wire
    query: str  # raw
    headers: dict[str, str]
    body: bytes
    host_url: str

    @property
    def client_context(self) -> Any:
        value = self.headers.get("x-amz-client-context")
        return None if value is None else json.loads(base64.b64decode(value))

    @property
    def access_key(self) -> str:
        auth = self.headers["authorization"]
        return auth.split("Credential=", 1)[1].split("/", 1)[0]


Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(
    status: int = 200,
    body: bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A canned answer (a fresh response object each time it is used)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else (body if body is not None else b"")

    async def answer(_: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=data, headers=headers or {})

    return answer


def aws_error(status: int, code: str, message: str = "", **headers: str) -> Reply:
    return reply(
        status,
        {"Type": "User", "message": message or code},
        {
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.awsgirlinfra/",
            **headers,
        },
    )


class RecordingLambda:
    """An Invoke endpoint that records requests and answers from ``script`` (then 200)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: list[Reply] = []
        self.default: Reply | None = None
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        raw = request.raw_path
        path, _, query = raw.partition("?")
        self.requests.append(
            Recorded(
                request.method,
                path,
                query,
                {k.lower(): v for k, v in request.headers.items()},
                body,
                self.url,
            )
        )
        answer = self.script.pop(0) if self.script else self.default
        if answer is None:
            invocation = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if invocation == "Event":
                return web.Response(status=202)
            if invocation == "DryRun":
                return web.Response(status=204)
            log = base64.b64encode(b"START RequestId: 1\nhello from the handler\nEND").decode()
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            if request.headers.get("X-Amz-Log-Type") == "Tail":
                headers["X-Amz-Log-Result"] = log
            return web.Response(status=200, body=b'{"ok":true}', headers=headers)
        return await answer(request)


async def dropping_server() -> tuple[asyncio.Server, str]:
    """A server that reads the start of a request and closes the connection without answering."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(64)
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def botocore_authorization(
    rec: Recorded, access_key: str, secret_key: str, token: str | None, region: str, service: str = "lambda"
) -> str:
    """What botocore's SigV4Auth signs for the recorded request with these credentials."""
    url = f"{rec.host_url}{rec.path}" + (f"?{rec.query}" if rec.query else "")
    headers = {
        k: v for k, v in rec.headers.items() if k in ("x-amz-invocation-type", "x-amz-log-type", "x-amz-client-context")
    }
    request = AWSRequest(method=rec.method, url=url, headers=headers, data=rec.body)
    stamp = datetime.datetime.strptime(rec.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    creds = botocore.credentials.Credentials(access_key, secret_key, token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=stamp):
        botocore.auth.SigV4Auth(creds, service, region).add_auth(request)
    return str(request.headers["Authorization"])
