"""End to end: segment-analytics-python -> eventrelay (uvicorn, SQLite queue and log, delivery engine,
aws_lambda destination) -> Lambda Invoke, with every failure category produced by a real failing path.

Two AWS endpoints take part:
- the local AWS endpoint (``eventrelay.localaws``): real STS AssumeRole with trust policies and External
  IDs, and real handlers in awslambdaric processes (one that raises, one slower than the timeout);
- a recording Invoke endpoint (aiohttp, in this process): records the function, qualifier, headers and
  body of every invoke and answers as scripted (fails for a while then recovers; 429 then 200).
Destinations without ``endpoint_url`` resolve STS to the local endpoint and Lambda to the recorder
through ``AWS_ENDPOINT_URL_STS`` / ``AWS_ENDPOINT_URL_LAMBDA``, as botocore does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
import segment.analytics as segment_analytics
from aiohttp import ClientSession, web

from eventrelay.config.model import Config
from eventrelay.destinations.aws_lambda import endpoints
from eventrelay.localaws.server import LocalAwsServer
from eventrelay.runtime import Runtime
from tests.support.inprocess import serving

WORKSPACE = "ws_delivery_e2e"
WRITE_KEY = "wk_delivery_e2e_0123456789abcdef"
ADMIN_TOKEN = "adm_delivery_e2e_0123456789abcdef"
ACCESS_KEY = "AKIAE2ETESTKEY000001"
SECRET_KEY = "e2e-test-secret-key-0000000000000001"
ROLE = "arn:aws:iam::123456789012:role/eventrelay-invoke"
DENIED_ROLE = "arn:aws:iam::123456789012:role/other-workspace-role"
DEADLINE = 60.0  # seconds for anything to settle on a loaded 2-core machine
FAST_RETRY = {"backoff_base": "100ms", "backoff_cap": "500ms", "concurrency": 8}

HANDLERS = """
import time

def boom(event, context):
    print("about to fail for", event["messageId"])
    raise ValueError("handler failed on purpose")

def slow(event, context):
    time.sleep(5)
    return {"late": True}
"""


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Invoke:
    function: str
    qualifier: str | None
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class Recorder:
    """A Lambda Invoke endpoint that records every request and answers per function name."""

    fail_first: dict[str, int] = field(default_factory=lambda: {"flaky-fn": 6, "throttle-fn": 2})
    invokes: list[Invoke] = field(default_factory=list)
    url: str = ""

    def calls(self, function: str) -> list[Invoke]:
        return [i for i in self.invokes if i.function == function]

    async def handle(self, request: web.Request) -> web.Response:
        name = unquote(request.match_info["name"])
        body = orjson.loads(await request.read())
        self.invokes.append(Invoke(name, request.query.get("Qualifier"), dict(request.headers), body, time.time()))
        if len(self.calls(name)) <= self.fail_first.get(name, 0):
            if name == "throttle-fn":
                return web.json_response(
                    {
                        "Type": "User",
                        "message": "Rate Exceeded.",
                        "Reason": "ConcurrentInvocationLimitExceeded",
                    },
                    status=429,
                    headers={"x-amzn-ErrorType": "TooManyRequestsException", "Retry-After": "1"},
                )
            return web.json_response(
                {"errorMessage": "not yet", "errorType": "RuntimeError"},
                status=200,
                headers={"X-Amz-Function-Error": "Unhandled"},
            )
        return web.json_response({"ok": True}, status=200, headers={"X-Amz-Executed-Version": "$LATEST"})


@contextlib.asynccontextmanager
async def recording_endpoint(recorder: Any = None) -> AsyncIterator[Any]:
    """Serve ``recorder`` (anything with ``handle(request)`` and ``url``; default a ``Recorder``)
    as a Lambda Invoke endpoint on a free port."""
    recorder = recorder or Recorder()
    app = web.Application(client_max_size=8 * 1024 * 1024)  # over Lambda's 6 MB payload limit
    app.router.add_post("/2015-03-31/functions/{name}/invocations", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_socket()
    await web.SockSite(runner, sock).start()
    recorder.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield recorder
    finally:
        await runner.cleanup()


def make_config(data: Path, functions: Path, local_url: str, *, users: dict[str, str] | None = None) -> Config:
    settings = {"region": "us-west-2", "role_address": ROLE}
    local = {**settings, "endpoint_url": local_url}
    return Config.model_validate(
        {
            "workspace": {"id": WORKSPACE},
            "storage": {"backend": "sqlite", "path": str(data)},
            "admin": {"token": ADMIN_TOKEN},
            "sources": [{"name": "app", "write_key": WRITE_KEY}],
            "destinations": [
                {
                    "name": "routed",
                    "settings": {
                        **settings,
                        "lambda": "default-fn:live",
                        "client_context": {"app": "shop"},
                        "functions": {
                            "identify": "users-fn",
                            "page": "pages-fn",
                            "screen": "screens-fn:7",
                            "group": "groups-fn",
                            "alias": "aliases-fn",
                        },
                    },
                    "delivery": FAST_RETRY,
                },
                {"name": "flaky", "settings": {**settings, "lambda": "flaky-fn"}, "delivery": FAST_RETRY},
                {
                    "name": "throttled",
                    "settings": {**settings, "lambda": "throttle-fn"},
                    "delivery": FAST_RETRY,
                },
                {
                    "name": "raises",
                    "settings": {**local, "lambda": "boom-fn", "log_type": "Tail"},
                    "delivery": {**FAST_RETRY, "retry_execution_errors": False},
                },
                {
                    "name": "slow",
                    "settings": {**local, "lambda": "slow-fn"},
                    "delivery": {**FAST_RETRY, "timeout": "1s", "max_attempts": 1},
                },
                {
                    "name": "denied",
                    "settings": {**local, "lambda": "boom-fn", "role_address": DENIED_ROLE},
                    "delivery": FAST_RETRY,
                },
            ],
            "localaws": {
                "functions_dir": str(functions),
                "functions": {
                    "boom-fn": {"handler": "handlers.boom"},
                    "slow-fn": {"handler": "handlers.slow", "timeout": "10s"},
                },
                "roles": {
                    "eventrelay-invoke": {},
                    "other-workspace-role": {"external_id": "ws_someone_else"},
                },
                "users": users or {},
            },
        }
    )


@dataclass
class Stack:
    runtime: Runtime
    url: str
    recorder: Recorder
    local: LocalAwsServer

    async def deliveries(self, destination: str) -> list[dict[str, Any]]:
        async with (
            ClientSession() as http,
            http.get(
                f"{self.url}/api/v1/deliveries",
                params={"destination": destination, "limit": "1000"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()
            rows: list[dict[str, Any]] = (await resp.json())["deliveries"]
            return rows

    async def wait_for(
        self, destination: str, check: Callable[[list[dict[str, Any]]], bool], what: str
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = await self.deliveries(destination)
            if check(rows):
                return rows
            await asyncio.sleep(0.1)
        raise AssertionError(f"{destination}: timed out waiting for {what}; deliveries: {rows}")


@contextlib.asynccontextmanager
async def stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    secret: str = SECRET_KEY,
    users: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "handlers.py").write_text(HANDLERS)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setattr(endpoints, "_default_session", None)  # botocore reads this test's credentials
    async with recording_endpoint() as recorder:
        probe = make_config(tmp_path / "data", functions, "http://127.0.0.1:1", users=users)
        assert probe.localaws is not None
        local = await LocalAwsServer(probe.localaws, config=probe).start()
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", local.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", recorder.url)
        runtime = Runtime(make_config(tmp_path / "data", functions, local.url, users=users))
        await runtime.start()
        try:
            async with serving(runtime) as url:  # what ``eventrelay serve`` runs
                yield Stack(runtime, url, recorder, local)
        finally:
            await runtime.stop()
            await local.stop()


def segment_client(url: str) -> segment_analytics.Client:
    return segment_analytics.Client(write_key=WRITE_KEY, host=url, sync_mode=True, max_retries=1, timeout=10)


def send_all(url: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    client = segment_client(url)
    for method, kwargs in calls:
        getattr(client, method)(**kwargs)
    client.flush()


async def test_each_call_type_reaches_its_function_signed_with_the_assumed_role(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = {t: f"{t}-{uuid.uuid4()}" for t in ("track", "identify", "page", "screen", "group", "alias")}
    only = {"integrations": {"All": False, "routed": True, "Segment.io": True}}  # routing end to end
    calls = [
        (
            "track",
            {
                "user_id": "u1",
                "event": "Order Completed",
                "properties": {"total": 9},
                "message_id": ids["track"],
                **only,
            },
        ),
        ("identify", {"user_id": "u1", "traits": {"plan": "pro"}, "message_id": ids["identify"], **only}),
        ("page", {"user_id": "u1", "name": "Home", "message_id": ids["page"], **only}),
        ("screen", {"user_id": "u1", "name": "Dashboard", "message_id": ids["screen"], **only}),
        ("group", {"user_id": "u1", "group_id": "g1", "message_id": ids["group"], **only}),
        ("alias", {"previous_id": "anon-1", "user_id": "u1", "message_id": ids["alias"], **only}),
        (
            "track",
            {"user_id": "u1", "event": "Order Completed", "message_id": ids["track"], **only},
        ),  # duplicate
    ]
    async with stack(tmp_path, monkeypatch) as s:
        await asyncio.to_thread(send_all, s.url, calls)
        rows = await s.wait_for(
            "routed",
            lambda rows: len(rows) == 6 and all(r["status"] == "delivered" for r in rows),
            "six delivered events",
        )
        await asyncio.sleep(0.5)  # a second delivery of the duplicate would show up by now
        got = {i.body["messageId"]: i for i in s.recorder.invokes if i.body["messageId"] in ids.values()}
        assert len([i for i in s.recorder.invokes if i.body["messageId"] == ids["track"]]) == 1
        expected = {
            "track": ("default-fn", "live"),
            "identify": ("users-fn", None),
            "page": ("pages-fn", None),
            "screen": ("screens-fn", "7"),
            "group": ("groups-fn", None),
            "alias": ("aliases-fn", None),
        }
        for call_type, (function, qualifier) in expected.items():
            invoke = got[ids[call_type]]
            assert (invoke.function, invoke.qualifier, invoke.body["type"]) == (
                function,
                qualifier,
                call_type,
            )
            auth = invoke.headers["Authorization"]
            assert auth.startswith("AWS4-HMAC-SHA256 Credential=ASIA") and "/us-west-2/lambda/aws4_request" in auth
            assert ACCESS_KEY not in auth and invoke.headers.get("X-Amz-Security-Token")
            assert invoke.headers.get("X-Amz-Invocation-Type", "RequestResponse") == "RequestResponse"
            context = orjson.loads(base64.b64decode(invoke.headers["X-Amz-Client-Context"]))
            assert context == {"custom": {"app": "shop"}}
        by_id = {r["message_id"]: r for r in rows}
        assert by_id[ids["identify"]]["function"] == "users-fn"
        assert all(r["category"] == "delivered" and r["attempts"] == 1 for r in rows)
        assert len(s.recorder.invokes) == 6  # integrations {All: false, routed: true}: no other destination
        for other in ("flaky", "throttled", "raises", "slow", "denied"):
            assert await s.deliveries(other) == []


async def test_every_failure_category_comes_from_a_real_failing_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with stack(tmp_path, monkeypatch) as s:
        ids = [f"ev-{i}-{uuid.uuid4()}" for i in range(4)]
        await asyncio.to_thread(
            send_all,
            s.url,
            [("track", {"user_id": f"u{i}", "event": "Signed Up", "message_id": m}) for i, m in enumerate(ids)],
        )

        # a function failing for a while (6 invokes) then recovering: every event delivered
        flaky = await s.wait_for(
            "flaky",
            lambda rows: len(rows) == 4 and all(r["status"] == "delivered" for r in rows),
            "every flaky event delivered",
        )
        assert sum(r["attempts"] for r in flaky) == 4 + 6
        assert len({i.body["messageId"] for i in s.recorder.calls("flaky-fn")}) == 4
        attempts = await s.runtime.log.attempts(next(r["message_id"] for r in flaky if r["attempts"] > 1), "flaky")
        assert attempts[0].category == "execution_error" and attempts[-1].category == "delivered"

        # 429 then recovery: throttled, then delivered (Retry-After honoured)
        await s.wait_for(
            "throttled",
            lambda rows: len(rows) == 4 and all(r["status"] == "delivered" for r in rows),
            "throttled events delivered",
        )
        throttled = [a for m in ids for a in await s.runtime.log.attempts(m, "throttled") if a.category == "throttled"]
        assert len(throttled) == 2 and all(a.status_code == 429 for a in throttled)

        # a function that raises: execution_error, failed (retry_execution_errors false), with its log tail
        rows = await s.wait_for(
            "raises",
            lambda rows: len(rows) == 4 and all(r["status"] == "failed" for r in rows),
            "execution errors",
        )
        assert {r["category"] for r in rows} == {"execution_error"}
        assert any("handler failed on purpose" in (r["error"] or "") for r in rows)

        # a function slower than the timeout: timeout
        rows = await s.wait_for(
            "slow", lambda rows: len(rows) == 4 and all(r["status"] == "failed" for r in rows), "timeouts"
        )
        assert {r["category"] for r in rows} == {"timeout"}

        # a role that trusts another External ID: access_denied, and no invoke reaches the function
        rows = await s.wait_for(
            "denied",
            lambda rows: len(rows) >= 1 and all(r["category"] == "access_denied" for r in rows),
            "access denied",
        )
        assert all(r["status"] == "retrying" for r in rows)  # the destination backs off as a whole
        assert s.runtime.engine.status()["denied"]["paused"] is True


async def test_a_wrong_secret_key_is_invalid_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with stack(
        tmp_path, monkeypatch, secret="this-is-the-wrong-secret-key-000000", users={ACCESS_KEY: SECRET_KEY}
    ) as s:
        message_id = f"wrong-secret-{uuid.uuid4()}"
        await asyncio.to_thread(send_all, s.url, [("identify", {"user_id": "u1", "message_id": message_id})])
        rows = await s.wait_for(
            "routed",
            lambda rows: any(r["message_id"] == message_id and r["category"] == "invalid_credentials" for r in rows),
            "invalid credentials",
        )
        assert rows[0]["status"] == "retrying"
        assert s.recorder.invokes == []  # STS refused the signature: nothing was invoked
