"""SIGTERM with a slow function: every attempt in flight finishes and is recorded, none runs twice.

eventrelay runs as ``serve --config`` subprocess delivering to an Invoke endpoint of this test
(``invoke_double.SlowFunction``: 200-500 ms per invocation, invocations counted per messageId),
so what a stop does to invocations in flight is counted on the function's side, not eventrelay's.
"""

from __future__ import annotations

import base64
import signal
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest

from tests.reliability.conftest import ADMIN_TOKEN, WORKSPACE, WRITE_KEY, Server, wait_until
from tests.reliability.invoke_double import SlowFunction, slow_function
from tests.support.process import free_port
from tests.support.serve import serve_env

ROUNDS = 3
EVENTS_PER_ROUND = 400
BATCH = 100
IN_FLIGHT_AT_STOP = 20  # invocations the function is running when SIGTERM is sent, at least
RESEND_INTERVAL = 0.05  # seconds between SIGTERMs: an operator or supervisor repeating the signal
STOP_TIMEOUT = 30.0  # seconds a stop may take: attempts finish within their 5 s timeout


def _config(workdir: Path, function_url: str) -> Path:
    config = workdir / "eventrelay.yaml"
    config.write_text(f"""
workspace: {{id: {WORKSPACE}}}
storage: {{backend: sqlite, path: {workdir / "data"}}}
admin: {{token: {ADMIN_TOKEN}}}
sources:
  - {{name: app, write_key: {WRITE_KEY}}}
destinations:
  - name: slow
    settings:
      lambda: slow-fn
      region: us-west-2
      role_address: arn:aws:iam::123456789012:role/eventrelay-invoke
      endpoint_url: {function_url}
    delivery: {{timeout: 5s, backoff_base: 200ms, backoff_cap: 1s}}
""")
    return config


def _send(url: str, count: int) -> set[str]:
    ids: set[str] = set()
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    for _ in range(count // BATCH):
        batch = [
            {"type": "track", "event": "Slow", "userId": "u", "messageId": str(uuid.uuid4())} for _ in range(BATCH)
        ]
        request = urllib.request.Request(
            f"{url}/v1/batch",
            data=orjson.dumps({"batch": batch}),
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        ids.update(item["messageId"] for item in batch)
    return ids


def _stop_mid_delivery(server: Server, function: SlowFunction, *, repeat: bool) -> None:
    assert wait_until(lambda: function.in_flight() >= IN_FLIGHT_AT_STOP, timeout=30, interval=0.01), (
        "delivery never got going"
    )
    assert server.proc is not None
    proc, server.proc = server.proc, None
    deadline = time.monotonic() + STOP_TIMEOUT
    proc.send_signal(signal.SIGTERM)
    while repeat and proc.poll() is None and time.monotonic() < deadline:  # an impatient supervisor
        time.sleep(RESEND_INTERVAL)
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=STOP_TIMEOUT) == 0


@pytest.mark.slow
@pytest.mark.parametrize("repeat", [False, True], ids=["once", "repeated"])
def test_sigterm_mid_delivery_with_a_slow_function_invokes_nothing_twice(tmp_path: Path, repeat: bool) -> None:
    """SIGTERM while ~64 invocations of 200-500 ms run, restart, three rounds: every accepted
    event is invoked exactly once and no invocation is cut off. ``repeated``: SIGTERM again every
    50 ms until the process exits (a second signal used to kill it mid-drain)."""
    with slow_function((0.2, 0.5)) as function:
        port = free_port()
        server = Server(tmp_path, _config(tmp_path, function.url), port, tmp_path / "unused", serve_env("info"))
        accepted: set[str] = set()
        try:
            for _ in range(ROUNDS):
                server.start()
                accepted |= _send(server.url, EVENTS_PER_ROUND)
                _stop_mid_delivery(server, function, repeat=repeat)
            server.start()
            assert wait_until(lambda: accepted <= function.finished(), timeout=60), (
                f"{len(accepted - function.finished())} accepted events never reached the function"
            )
        finally:
            if server.proc is not None:
                server.kill()
        cut = sum(function.cut.values())
        assert function.duplicates() == {}, f"{len(function.duplicates())} events invoked twice ({cut} cut off)"
        assert cut == 0, f"{cut} invocations had their connection closed before the answer"
