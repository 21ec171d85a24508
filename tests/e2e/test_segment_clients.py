"""End to end: the official Segment clients send every call type to a running eventrelay (real
uvicorn, real Runtime, SQLite queue) and the events are found durable in the store, fields intact.

- segment-analytics-python (PyPI), gzip on: one batch of all six call types, and sync mode.
- @segment/analytics-node (npm; ``npm ci --prefix tests/e2e/node``): all six in one batch.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventrelay.config.model import Config
from eventrelay.runtime import Runtime
from tests.support.inprocess import serving

PY_KEY = "wk_python_client_0123456789"
NODE_KEY = "wk_node_client_0123456789ab"
DESTINATION = "fn"
NODE_DIR = Path(__file__).parent / "node"
CALL_TYPES = {"track", "identify", "page", "screen", "group", "alias"}


@dataclass
class Server:
    url: str
    runtime: Runtime

    async def stored(self, source: str, wanted: int, deadline: float = 20.0) -> list[dict[str, Any]]:
        """Claim jobs of the one destination until ``wanted`` events of ``source`` are back."""
        found: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while len(found) < wanted and loop.time() < end:
            jobs = await self.runtime.queue.claim(DESTINATION, 100, 60)
            found += [orjson.loads(j.body) for j in jobs if j.source == source]
            if len(found) < wanted:
                await asyncio.sleep(0.05)
        return found


def make_config(data_dir: Path, *, fast_path: bool = True) -> Config:
    return Config.model_validate(
        {
            "workspace": {"id": "ws_e2e"},
            "storage": {"backend": "sqlite", "path": str(data_dir)},
            "ingest": {"fast_path": fast_path},
            "sources": [{"name": "py", "write_key": PY_KEY}, {"name": "node", "write_key": NODE_KEY}],
            "destinations": [
                {
                    "name": DESTINATION,
                    "settings": {
                        "lambda": "fn",
                        "region": "us-west-2",
                        "role_address": "arn:aws:iam::123456789012:role/r",
                    },
                }
            ],
        }
    )


@pytest.fixture(params=[True, False], ids=["fast_path_on", "fast_path_off"])
async def server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    """eventrelay as ``serve`` runs it, with ``ingest.fast_path`` on and off: every test runs both ways."""
    config = make_config(tmp_path / "data", fast_path=request.param)
    runtime = Runtime(config, role="ingest")  # no delivery engine runs
    await runtime.start()
    try:
        async with serving(runtime) as url:  # what ``eventrelay serve`` runs, fast path included
            yield Server(url, runtime)
    finally:
        await runtime.stop()


def by_type(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["type"]: e for e in events}


def send_with_analytics_python(url: str, run: str, *, sync_mode: bool) -> list[Exception]:
    from segment.analytics import Client

    errors: list[Exception] = []
    client = Client(
        PY_KEY,
        host=url,
        gzip=True,
        sync_mode=sync_mode,
        max_retries=1,
        upload_interval=0.1,
        on_error=lambda exc, _batch: errors.append(exc),
    )
    user = f"py-user-{run}"
    client.identify(user, {"plan": "pro", "run": run}, message_id=f"py-identify-{run}")
    client.track(user, "Python Order Completed", {"total": 42.5, "run": run}, message_id=f"py-track-{run}")
    client.page(user, "Docs", "Home", {"run": run}, message_id=f"py-page-{run}")
    client.screen(user, "App", "Cart", {"run": run}, message_id=f"py-screen-{run}")
    client.group(user, f"group-{run}", {"name": "Acme"}, message_id=f"py-group-{run}")
    client.alias(f"anon-{run}", user, message_id=f"py-alias-{run}")
    if not sync_mode:  # sync mode posts each call at once and has no consumer thread to stop
        client.shutdown()
    return errors


@pytest.mark.parametrize("sync_mode", [False, True], ids=["batched", "sync"])
async def test_analytics_python_every_call_type(server: Server, sync_mode: bool) -> None:
    run = uuid.uuid4().hex[:8]
    errors = await asyncio.to_thread(send_with_analytics_python, server.url, run, sync_mode=sync_mode)
    assert errors == []
    events = by_type(await server.stored("py", 6))
    assert set(events) == CALL_TYPES
    user = f"py-user-{run}"
    for call_type, event in events.items():
        assert event["messageId"] == f"py-{call_type}-{run}"
        assert event["context"]["library"]["name"] == "analytics-python"
        assert event["context"]["ip"] == "127.0.0.1"
        assert event["userId"] == user
        assert event["version"] == 2
        assert event["receivedAt"].endswith("Z")
        assert event["originalTimestamp"]
        assert "writeKey" not in event
    assert events["track"]["event"] == "Python Order Completed"
    assert events["track"]["properties"] == {"total": 42.5, "run": run}
    assert events["identify"]["traits"] == {"plan": "pro", "run": run}
    assert (events["page"]["name"], events["page"]["category"]) == ("Home", "Docs")
    assert events["screen"]["name"] == "Cart"
    assert events["group"]["groupId"] == f"group-{run}"
    assert events["alias"]["previousId"] == f"anon-{run}"


async def test_analytics_python_resend_is_deduplicated(server: Server) -> None:
    run = uuid.uuid4().hex[:8]
    for _ in range(2):
        assert await asyncio.to_thread(send_with_analytics_python, server.url, run, sync_mode=True) == []
    events = await server.stored("py", 12, deadline=2.0)
    assert sorted(e["messageId"] for e in events) == sorted(f"py-{t}-{run}" for t in CALL_TYPES)


async def test_analytics_node_every_call_type(server: Server) -> None:
    if not (NODE_DIR / "node_modules" / "@segment" / "analytics-node").is_dir():
        pytest.skip("tests/e2e/node/node_modules is absent: run `npm ci --prefix tests/e2e/node`")
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    run = uuid.uuid4().hex[:8]
    proc = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "send_all.mjs"),
        server.url,
        NODE_KEY,
        run,
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out.decode(), err.decode())
    events = by_type(await server.stored("node", 6))
    assert set(events) == CALL_TYPES
    user = f"node-user-{run}"
    for event in events.values():
        assert event["userId"] == user
        assert event["context"]["library"]["name"] == "@segment/analytics-node"
        assert event["messageId"]
        assert event["receivedAt"].endswith("Z")
    assert events["track"]["event"] == "Node Order Completed"
    assert events["track"]["properties"] == {"runId": run, "total": 42.5, "items": ["a", "b"]}
    assert events["identify"]["traits"] == {"plan": "pro", "runId": run}
    assert events["page"]["name"] == "Home"
    assert events["screen"]["name"] == "Cart"
    assert events["group"]["groupId"] == f"group-{run}"
    assert events["alias"]["previousId"] == f"anon-{run}"
