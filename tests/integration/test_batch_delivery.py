"""Batches end to end: the Tracking API -> eventrelay (in-process Runtime, SQLite or JetStream) ->
one Invoke per batch, with per-event results.

Two Lambda endpoints take part, as in ``test_delivery_e2e.py``:
- an independent Invoke recorder (aiohttp, in this process) that records every invoke's function
  and payload and answers per function (``batchItemFailures`` for some events);
- the local AWS endpoint: STS AssumeRole for every destination, and a real handler in an
  awslambdaric process for the poison test (it raises whenever its batch holds the poison event).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from aiohttp import ClientSession, web

from eventrelay.config.model import Config
from eventrelay.destinations.aws_lambda import endpoints
from eventrelay.localaws.server import LocalAwsServer
from eventrelay.runtime import Runtime
from tests.integration.test_delivery_e2e import ADMIN_TOKEN, recording_endpoint
from tests.integration.test_delivery_e2e import Recorder as E2ERecorder
from tests.integration.test_delivery_e2e import Stack as E2EStack
from tests.jetstream.natsserver import shared_server_url
from tests.support.awsenv import isolate_aws_env
from tests.support.inprocess import serving

WORKSPACE = "ws_batch_e2e"
WRITE_KEY = "wk_batch_e2e_0123456789abcdef00"
ROLE = "arn:aws:iam::123456789012:role/eventrelay-invoke"
FAST_RETRY = {"backoff_base": "50ms", "backoff_cap": "200ms", "concurrency": 8}
IDLE_WAIT = 0.3  # max_wait of the idle destination, seconds
POISON = "poison-event"
HANDLERS = f"""
def handle(event, context):
    ids = [e["messageId"] for e in event["batch"]]
    if {POISON!r} in ids:
        raise ValueError("cannot handle " + {POISON!r})
    print("handled", len(ids), "events")
    return {{"batchItemFailures": []}}
"""
_streams = itertools.count(1)


@dataclass
class Invoke:
    function: str
    ids: list[str]
    at: float


@dataclass
class Recorder:
    """Records each invoke's function and messageIds; ``fail_once`` ids are reported failed by
    the first invoke that holds them, with ``unknown`` ids beside them."""

    fail_once: set[str] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)
    invokes: list[Invoke] = field(default_factory=list)
    url: str = ""

    def of(self, function: str) -> list[Invoke]:
        return [i for i in self.invokes if i.function == function]

    async def handle(self, request: web.Request) -> web.Response:
        name = unquote(request.match_info["name"])
        ids = [e["messageId"] for e in orjson.loads(await request.read())["batch"]]
        self.invokes.append(Invoke(name, ids, time.time()))
        failed = [i for i in ids if i in self.fail_once]
        self.fail_once.difference_update(failed)
        items = [{"itemIdentifier": i} for i in [*failed, *(self.unknown if failed else [])]]
        return web.json_response({"batchItemFailures": items}, headers={"X-Amz-Executed-Version": "$LATEST"})


def make_config(data: Path, functions: Path, local_url: str, storage: dict[str, Any]) -> Config:
    settings = {"region": "us-west-2", "role_address": ROLE}

    def destination(name: str, function: str, batch: dict[str, Any], **delivery: Any) -> dict[str, Any]:
        return {
            "name": name,
            "settings": {**settings, "lambda": function, "batch": batch},
            "delivery": {**FAST_RETRY, **delivery},
        }

    poisoned = destination("poisoned", "poison-fn", {"max_events": 20, "max_wait": "100ms"}, max_attempts=12)
    poisoned["settings"]["endpoint_url"] = local_url  # the real local runtime runs this handler
    return Config.model_validate(
        {
            "workspace": {"id": WORKSPACE},
            "storage": {**storage, "path": str(data)},
            "archive": {"max_bytes": "100MB"},  # JetStream reserves it per stream: the tests share one server
            "admin": {"token": ADMIN_TOKEN},
            "sources": [{"name": "app", "write_key": WRITE_KEY}],
            "destinations": [
                destination("bulk", "bulk-fn", {"max_events": 100, "max_wait": "2s"}),
                destination("partial", "partial-fn", {"max_events": 100, "max_wait": "200ms"}),
                destination("idle", "idle-fn", {"max_wait": IDLE_WAIT}),
                poisoned,
            ],
            "localaws": {
                "functions_dir": str(functions),
                "functions": {"poison-fn": {"handler": "handlers.handle", "concurrency": 2}},
                "roles": {"eventrelay-invoke": {}},
            },
        }
    )


@dataclass
class Stack(E2EStack):
    """``test_delivery_e2e``'s stack (deliveries, wait_for) with this module's recorder."""

    batches: Recorder = field(default_factory=Recorder)

    async def api(self, path: str, **params: str) -> Any:
        async with (
            ClientSession() as http,
            http.get(f"{self.url}{path}", params=params, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp,
        ):
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def track(self, destination: str, ids: list[str]) -> float:
        """POST ``ids`` as one /v1/batch routed to ``destination`` only; returns when the 200 came."""
        body = {
            "batch": [
                {"type": "track", "event": "Batched", "userId": f"u{n}", "messageId": m, "properties": {"n": n}}
                for n, m in enumerate(ids)
            ],
            "integrations": {"All": False, destination: True},
        }
        auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        async with (
            ClientSession() as http,
            http.post(f"{self.url}/v1/batch", json=body, headers={"Authorization": f"Basic {auth}"}) as resp,
        ):
            assert resp.status == 200, await resp.text()
        return time.time()


@pytest.fixture(params=["sqlite", "jetstream"])
async def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"backend": "sqlite"}
    url = await shared_server_url(request)
    return {"backend": "jetstream", "servers": [url], "stream": f"BATCHE2E{next(_streams)}"}


@contextlib.asynccontextmanager
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]) -> AsyncIterator[Stack]:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "handlers.py").write_text(HANDLERS)
    isolate_aws_env(monkeypatch, tmp_path, access_key="AKIABATCHTESTKEY0001", secret_key="batch-test-secret-0001")
    monkeypatch.setattr(endpoints, "_default_session", None)
    async with recording_endpoint(Recorder()) as recorder:
        probe = make_config(tmp_path / "data", functions, "http://127.0.0.1:1", storage)
        assert probe.localaws is not None
        local = await LocalAwsServer(probe.localaws, config=probe).start()
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", local.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", recorder.url)
        runtime = Runtime(make_config(tmp_path / "data", functions, local.url, storage))
        await runtime.start()
        try:
            async with serving(runtime) as url:
                yield Stack(runtime, url, E2ERecorder(), local, recorder)
        finally:
            await runtime.stop()
            await local.stop()


def delivered(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda rows: len(rows) == count and all(r["status"] == "delivered" for r in rows)


async def test_1000_events_go_in_at_most_10_invokes_of_at_most_100_each_delivered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]
) -> None:
    ids = [f"bulk-{n:04d}-{uuid.uuid4()}" for n in range(1000)]
    async with stack(tmp_path, monkeypatch, storage) as s:
        for start in range(0, 1000, 100):
            await s.track("bulk", ids[start : start + 100])
        await s.wait_for("bulk", delivered(1000), "1,000 delivered events")
        await asyncio.sleep(0.3)  # a second delivery of any event would show up by now

        invokes = s.batches.of("bulk-fn")
        assert len(invokes) <= 10 and max(len(i.ids) for i in invokes) <= 100
        assert Counter(m for i in invokes for m in i.ids) == Counter(ids)  # every event exactly once
        async with ClientSession() as http, http.get(f"{s.url}/metrics") as resp:
            text = await resp.text()
        assert 'eventrelay_batch_events_count{destination="bulk"}' in text
        assert 'eventrelay_batch_bytes_bucket{destination="bulk",le="65536.0"}' in text


async def test_events_a_function_reports_failed_are_exactly_those_retried_then_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]
) -> None:
    ids = [f"partial-{n:02d}-{uuid.uuid4()}" for n in range(10)]
    async with stack(tmp_path, monkeypatch, storage) as s:
        s.batches.fail_once = {ids[1], ids[4], ids[8]}
        s.batches.unknown = ["not-in-this-batch"]
        await s.track("partial", ids)
        rows = await s.wait_for("partial", delivered(10), "10 delivered events")

        first, *again = s.batches.of("partial-fn")
        assert first.ids == ids  # one batch, in receipt order
        assert sorted(m for i in again for m in i.ids) == sorted([ids[1], ids[4], ids[8]])
        attempts = {r["message_id"]: r["attempts"] for r in rows}
        assert {m for m, n in attempts.items() if n == 2} == {ids[1], ids[4], ids[8]}
        assert {n for m, n in attempts.items() if m not in (ids[1], ids[4], ids[8])} == {1}

        history = (await s.api(f"/api/v1/deliveries/{ids[4]}"))["attempts"]
        assert [(a["category"], a["status"]) for a in history] == [
            ("execution_error", "retrying"),
            ("delivered", "delivered"),
        ]
        assert history[0]["response"]["error_type"] == "BatchItemFailure"
        assert history[0]["batch"]["size"] == 10 and history[0]["batch"]["bytes"] > 10 * 100
        assert "'not-in-this-batch'" in history[0]["warning"]
        assert history[0]["request"]["batch"] == {"events": 10, "bytes": history[0]["batch"]["bytes"]}


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_a_poison_event_alone_ends_failed_and_every_other_event_of_its_batch_is_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]
) -> None:
    ids = [f"poison-batch-{n:02d}" for n in range(19)]
    ids.insert(7, POISON)
    async with stack(tmp_path, monkeypatch, storage) as s:
        await s.track("poisoned", ids)
        rows = await s.wait_for(
            "poisoned",
            lambda rows: len(rows) == 20 and all(r["status"] in ("delivered", "failed") for r in rows),
            "every event settled",
        )
        status = {r["message_id"]: (r["status"], r["category"]) for r in rows}
        assert status.pop(POISON) == ("failed", "execution_error")
        assert set(status.values()) == {("delivered", "delivered")}

        history = (await s.api(f"/api/v1/deliveries/{POISON}"))["attempts"]
        sizes = [a["batch"]["size"] for a in history]
        assert sizes[:2] == [20, 20] and sizes[-1] == 1 and len(sizes) == 12  # bisected down to itself
        assert "cannot handle poison-event" in history[-1]["response"]["error_message"]
        dead = await s.runtime.queue.redrive("poisoned", [POISON])
        assert dead == 1  # kept as a dead letter, for a redrive


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_an_idle_destination_adds_no_more_than_max_wait_to_a_lone_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]
) -> None:
    async with stack(tmp_path, monkeypatch, storage) as s:
        latencies = []
        for n in range(5):
            mid = f"idle-{n}-{uuid.uuid4()}"
            acked = await s.track("idle", [mid])
            await s.wait_for("idle", lambda rows, mid=mid: any(r["message_id"] == mid for r in rows), "the event")
            [invoke] = [i for i in s.batches.of("idle-fn") if mid in i.ids]
            latencies.append(invoke.at - acked)
        assert statistics.median(latencies) <= IDLE_WAIT + 0.05, latencies
        assert min(latencies) >= IDLE_WAIT - 0.05, latencies  # it did wait for company
