"""A whole eventrelay (``Runtime`` served as ``eventrelay serve`` serves it, SQLite queue and log)
delivering to the local AWS endpoint's real Lambda runtime, for the flow-control tests: the
handlers, functions (reserved concurrency, Retry-After) and roles are each test's own."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from eventrelay.config.model import Config
from eventrelay.destinations.aws_lambda import endpoints
from eventrelay.localaws.server import LocalAwsServer
from eventrelay.runtime import Runtime
from tests.support.awsenv import isolate_aws_env
from tests.support.inprocess import serving

WORKSPACE = "ws_flow_tests"
WRITE_KEY = "wk_flow_tests_0123456789abcdef"
ADMIN_TOKEN = "adm_flow_tests_0123456789abcdef"
ROLE = "arn:aws:iam::123456789012:role/eventrelay-invoke"
BATCH = 100  # events per /v1/batch request

HANDLERS = """
import time

def sleep50(event, context):
    time.sleep(0.05)
    return {"ok": event["messageId"]}

def sleep200(event, context):
    time.sleep(0.2)
    return {"ok": event["messageId"]}

def sleep300(event, context):
    time.sleep(0.3)
    return {"ok": event["messageId"]}
"""


@dataclass
class Flow:
    runtime: Runtime
    url: str
    local: LocalAwsServer
    data: Path
    http: aiohttp.ClientSession

    async def send(self, events: list[dict[str, Any]]) -> None:
        """POST ``events`` (each gets a messageId if it has none) in batches; every batch must be accepted."""
        for start in range(0, len(events), BATCH):
            batch = [{"messageId": str(uuid.uuid4()), **e} for e in events[start : start + BATCH]]
            async with self.http.post(
                f"{self.url}/v1/batch", json={"batch": batch}, auth=aiohttp.BasicAuth(WRITE_KEY, "")
            ) as resp:
                assert resp.status == 200, await resp.text()

    async def api(self, path: str) -> dict[str, Any]:
        async with self.http.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
            assert resp.status == 200, await resp.text()
            body: dict[str, Any] = await resp.json()
            return body

    async def metrics(self) -> str:
        async with self.http.get(f"{self.url}/metrics") as resp:
            return await resp.text()

    def attempts(self, destination: str) -> list[tuple[str, str, float, float]]:
        """(message_id, category, started_at, finished_at) of every recorded attempt, oldest first."""
        with contextlib.closing(sqlite3.connect(self.data / "deliverylog.db")) as db:
            rows = db.execute(
                "SELECT message_id, category, started_at, finished_at FROM attempts WHERE destination = ? ORDER BY id",
                (destination,),
            ).fetchall()
        return [(str(m), str(c), float(s), float(f)) for m, c, s, f in rows]

    async def wait(self, check: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within:g} s waiting for {what}")
            await asyncio.sleep(0.05)

    def delivered(self, destination: str) -> int:
        with contextlib.closing(sqlite3.connect(self.data / "deliverylog.db")) as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE destination = ? AND status = 'delivered'", (destination,)
            ).fetchone()
        return int(count)


def config(
    tmp_path: Path,
    *,
    functions: dict[str, dict[str, Any]],
    destinations: list[dict[str, Any]],
    role: dict[str, Any] | None = None,
) -> Config:
    """Destinations take ``{"name", "lambda", "delivery"?, "ordering"?}``; every one uses ``ROLE``."""
    fdir = tmp_path / "functions"
    fdir.mkdir(parents=True, exist_ok=True)
    (fdir / "handlers.py").write_text(HANDLERS)
    (fdir / "ordering.py").write_text(ORDER_HANDLER)
    return Config.model_validate(
        {
            "workspace": {"id": WORKSPACE},
            "storage": {"backend": "sqlite", "path": str(tmp_path / "data")},
            "admin": {"token": ADMIN_TOKEN},
            "sources": [{"name": "app", "write_key": WRITE_KEY}],
            "destinations": [
                {
                    "name": d["name"],
                    "settings": {"lambda": d["lambda"], "region": "us-west-2", "role_address": ROLE},
                    "delivery": d.get("delivery", {}),
                    **({"ordering": d["ordering"]} if "ordering" in d else {}),
                }
                for d in destinations
            ],
            "localaws": {
                "functions_dir": str(fdir),
                "functions": functions,
                "roles": {"eventrelay-invoke": role or {}},
            },
        }
    )


@contextlib.asynccontextmanager
async def flow_stack(cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Flow]:
    """The local endpoint, then eventrelay served in this process; both stopped on exit."""
    isolate_aws_env(monkeypatch, tmp_path, access_key="AKIAFLOWTESTS0000001", secret_key="flow-tests-secret-0001")
    monkeypatch.setattr(endpoints, "_default_session", None)  # botocore reads this test's environment
    assert cfg.localaws is not None
    local = await LocalAwsServer(cfg.localaws, config=cfg).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", local.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", local.url)
    runtime = Runtime(cfg)
    await runtime.start()
    try:
        async with serving(runtime) as url, aiohttp.ClientSession() as http:
            yield Flow(runtime, url, local, Path(cfg.storage.path), http)
    finally:
        await runtime.stop()
        await local.stop()


ORDER_HANDLER = '''
import json, os, random, time

SINK = os.path.join(os.path.dirname(__file__), "arrivals.jsonl")
FAILING = set(os.environ.get("FLOW_FAILING_USERS", "").split(","))


def record(event, context):
    """Fails at random for the users in FAILING; records every event it accepts, in order."""
    user = event.get("userId")
    if user in FAILING and random.random() < 0.3:
        raise RuntimeError("random failure for " + user)
    n, fn = event["properties"]["n"], context.function_name
    line = json.dumps({"fn": fn, "user": user, "n": n, "id": event["messageId"], "at": time.time()})
    with open(SINK, "a") as sink:
        sink.write(line + "\\n")
    return {"ok": True}


def poison(event, context):
    """Fails every time for an event with properties.poison; records the others."""
    if event["properties"].get("poison"):
        raise RuntimeError("this event always fails")
    return record(event, context)
'''


def arrivals(tmp_path: Path) -> list[dict[str, Any]]:
    """What the ordering handlers recorded, in the order they ran."""
    import json

    sink = tmp_path / "functions" / "arrivals.jsonl"
    if not sink.exists():
        return []
    return [json.loads(line) for line in sink.read_text().splitlines() if line.endswith("}")]


def user_events(users: int, per_user: int, *, prefix: str = "") -> list[dict[str, Any]]:
    """Event n of every user, then event n + 1 of every user...: each batch holds one event per
    user, so every user's receipt order is n = 0, 1, 2..."""
    return [
        {
            "type": "track",
            "event": "Step",
            "userId": f"user{u}",
            "properties": {"n": n},
            "messageId": f"{prefix}u{u}-{n}",
        }
        for n in range(per_user)
        for u in range(users)
    ]


def first_arrivals(seen: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per user, the event numbers in the order they first arrived (a repeat is allowed)."""
    out: dict[str, list[int]] = {}
    known: set[str] = set()
    for a in seen:
        if a["id"] not in known:
            known.add(a["id"])
            out.setdefault(a["user"], []).append(a["n"])
    return out


def ordered_destination_yaml(write_key: str, aws_port: int, delivery: str) -> str:
    """YAML: the source ``app`` and the destination ``users`` (``ordering: user``) delivering to
    ``record-fn`` on the local endpoint at ``aws_port``, for the tests that run ``eventrelay serve``."""
    return f"""
sources:
  - {{name: app, write_key: {write_key}}}
destinations:
  - name: users
    ordering: user
    settings:
      lambda: record-fn
      region: us-west-2
      role_address: arn:aws:iam::123456789012:role/eventrelay-invoke
      endpoint_url: http://127.0.0.1:{aws_port}
    delivery: {delivery}
"""


def record_function_yaml(aws_port: int, functions: Path) -> str:
    """YAML: the ``localaws`` section running ``record-fn`` (``ORDER_HANDLER``'s ``record``)."""
    return f"""
localaws:
  port: {aws_port}
  functions_dir: {functions}
  functions:
    record-fn: {{handler: ordering.record, concurrency: 4}}
  roles:
    eventrelay-invoke: {{}}
"""
