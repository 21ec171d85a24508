"""End to end on JetStream: one ``serve --role ingest`` and two ``serve --role deliver`` processes
share the work; every event reaches the Lambda handler exactly once, and the delivery log of
any node shows what the others did."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import free_port, stop_process
from tests.support.serve import EVENTRELAY, serve_env, spawn_eventrelay, wait_healthy

from .natsserver import NatsServer

WRITE_KEY = "wk_jetstream_0123456789abcdef"
ADMIN_TOKEN = "adm_jetstream_0123456789abcdef"
EVENTS = 300
DEADLINE = 90.0  # two cores shared by many processes: be generous

HANDLER = """
import os

def handler(event, context):
    with open(os.path.join(os.path.dirname(__file__), "sink.txt"), "a") as f:
        f.write(event["messageId"] + "\\n")
    return {"ok": True}
"""


def _config(workdir: Path, nats_url: str, aws_port: int, *, with_localaws: bool, data: str) -> Path:
    functions = workdir / "functions"
    local = f"""
localaws:
  port: {aws_port}
  functions_dir: {functions}
  functions:
    sink: {{handler: sink.handler, timeout: 30s, concurrency: 4}}
  roles:
    eventrelay-invoke: {{}}
"""
    path = workdir / ("localaws.yaml" if with_localaws else f"{data}.yaml")
    path.write_text(f"""
workspace: {{id: ws_jetstream}}
storage: {{backend: jetstream, servers: ["{nats_url}"], stream: E2E, path: {workdir / data}}}
admin: {{token: {ADMIN_TOKEN}}}
sources:
  - {{name: app, write_key: {WRITE_KEY}}}
destinations:
  - name: sink
    settings:
      lambda: sink
      region: us-west-2
      role_address: arn:aws:iam::123456789012:role/eventrelay-invoke
      endpoint_url: http://127.0.0.1:{aws_port}
    delivery: {{timeout: 10s, backoff_base: 200ms, backoff_cap: 1s, concurrency: 4}}
{local if with_localaws else ""}""")
    return path


class Proc:
    def __init__(self, args: list[str], workdir: Path, name: str, env: dict[str, str]) -> None:
        self.log = workdir / f"{name}.log"
        self.proc = spawn_eventrelay(args, cwd=workdir, env=env, log=self.log)

    def stop(self) -> None:
        stop_process(self.proc, grace=20)


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _send(port: int, ids: list[str]) -> None:
    batch = [{"type": "track", "event": "Order Completed", "userId": "u1", "messageId": m} for m in ids]
    body = json.dumps({"batch": batch}).encode()
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/batch", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200


def _delivered_by(port: int) -> float:
    _, text = _get(f"http://127.0.0.1:{port}/metrics", ADMIN_TOKEN)
    found = re.search(rb'eventrelay_events_delivered_total\{destination="sink"\} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def env() -> dict[str, str]:
    return serve_env(log_level="warning")


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


@pytest.mark.timeout(240)
async def test_two_delivery_processes_deliver_every_event_exactly_once(
    tmp_path: Path, nats_url: str, nats_server: NatsServer, env: dict[str, str], procs: list[Proc]
) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "sink.py").write_text(HANDLER)
    aws_port = free_port()
    local_cfg = _config(tmp_path, nats_url, aws_port, with_localaws=True, data="unused")
    procs.append(Proc(["localaws", "--config", str(local_cfg)], tmp_path, "localaws", env))
    ports = {"ingest": free_port(), "deliver-a": free_port(), "deliver-b": free_port()}
    for name, port in ports.items():
        cfg = _config(tmp_path, nats_url, aws_port, with_localaws=False, data=name)
        role = "ingest" if name == "ingest" else "deliver"
        procs.append(Proc(["serve", "--config", str(cfg), "--role", role, "--port", str(port)], tmp_path, name, env))
    for proc, port in zip(procs[1:], ports.values(), strict=True):
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc.proc, proc.log, DEADLINE)

    ids = [str(uuid.uuid4()) for _ in range(EVENTS)]
    for i in range(0, EVENTS, 50):
        _send(ports["ingest"], ids[i : i + 50])

    sink = tmp_path / "functions" / "sink.txt"
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline and len(_lines(sink)) < EVENTS:  # noqa: ASYNC110 - another process writes it
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # a duplicate invocation would land now

    delivered = _lines(sink)
    assert sorted(delivered) == sorted(ids), "each event invoked the function exactly once"
    by_node = {name: _delivered_by(ports[name]) for name in ("deliver-a", "deliver-b")}
    assert all(n > 0 for n in by_node.values()) and sum(by_node.values()) == EVENTS, by_node
    assert _delivered_by(ports["ingest"]) == 0  # role ingest runs no delivery

    status, body = _get(f"http://127.0.0.1:{ports['ingest']}/api/v1/deliveries?destination=sink&limit=1000",
                        ADMIN_TOKEN)  # fmt: skip
    assert status == 200
    rows: list[dict[str, Any]] = json.loads(body)["deliveries"]
    assert sorted(r["message_id"] for r in rows) == sorted(ids)  # the ingest node sees the others' attempts
    assert {r["status"] for r in rows} == {"delivered"}

    # the CLI, a separate process with the same config, reads the shared log too
    cli = await asyncio.to_thread(
        subprocess.run,
        [*EVENTRELAY, "deliveries", "--config", str(tmp_path / "ingest.yaml"),
         "--destination", "sink", "--limit", "1000", "--json"],
        cwd=tmp_path, env=env, capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    listed = json.loads(cli.stdout)["deliveries"]
    assert sorted(r["message_id"] for r in listed) == sorted(ids)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []
