"""The small things a user trips on, each as the user meets it (a command in a shell, serve's output)."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from pathlib import Path

import yaml
from tests.deliverylog.records import attempt
from tests.support.process import free_port, stop_process
from tests.support.serve import EVENTRELAY, serve_env, spawn_eventrelay, wait_healthy

from eventrelay.core.outcome import Category
from eventrelay.core.records import Accepted
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
from eventrelay.queue.sqlite import SQLiteQueue

REPO = Path(__file__).resolve().parents[2]
TOKEN = "small-things-admin-token-0123"
WRITE_KEY = "small-things-write-key-0123456"
START_TIMEOUT = 60.0
ROLE = "arn:aws:iam::123456789012:role/eventrelay-invoke"


def write_config(tmp: Path, **extra: object) -> Path:
    config = {
        "workspace": {"id": "ws_small"},
        "storage": {"path": str(tmp / "data")},
        "admin": {"token": TOKEN},
        "sources": [{"name": "web", "write_key": WRITE_KEY}],
        "destinations": [
            {"name": "lambda-prod", "settings": {"lambda": "my-fn", "region": "us-west-2", "role_address": ROLE}}
        ],
        **extra,
    }
    path = tmp / "eventrelay.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], cwd=cwd, env=serve_env(), capture_output=True, text=True, timeout=120)


def eventrelay(*args: str) -> str:
    return " ".join([*EVENTRELAY, *args])


async def test_deliveries_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    log = SQLiteDeliveryLog(tmp_path / "data" / "deliverylog.db")
    await log.start()
    await log.record([attempt(f"event-{i:05d}", Category.TIMEOUT, at=time.time() - i) for i in range(1500)])
    await log.close()

    done = shell(eventrelay("deliveries", "--config", str(config), "--limit", "1000") + " | head -2", tmp_path)

    assert done.stdout.splitlines()[0].startswith("MESSAGE ID")
    assert len(done.stdout.splitlines()) == 2
    assert done.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"


async def test_the_cli_never_prints_python_none(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    log = SQLiteDeliveryLog(tmp_path / "data" / "deliverylog.db")
    await log.start()
    no_answer = attempt("silent", Category.TIMEOUT, at=time.time() - 5)  # no status, no qualifier, no tail
    no_answer.function = None
    await log.record([no_answer])
    await log.close()

    for args in (["deliveries"], ["deliveries", "--message-id", "silent"], ["deliveries", "--status", "delivered"]):
        done = shell(eventrelay(*args, "--config", str(config)), tmp_path)
        assert done.returncode == 0, done.stderr
        assert "None" not in done.stdout, (args, done.stdout)
    shown = shell(eventrelay("deliveries", "--message-id", "silent", "--config", str(config)), tmp_path).stdout
    assert "no answer" in shown and "next attempt:" in shown


async def test_the_redrive_progress_bar_ends_its_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    queue = SQLiteQueue(tmp_path / "data" / "queue.db")
    log = SQLiteDeliveryLog(tmp_path / "data" / "deliverylog.db")
    await queue.start()
    await log.start()
    ids = [f"dead-{i}" for i in range(7)]
    await queue.append([Accepted(m, "web", "track", time.time(), b"{}", ("lambda-prod",)) for m in ids])
    for job in await queue.claim("lambda-prod", 100, 60.0):
        await queue.dead_letter(job, "failed", "boom")
    await log.record([attempt(m, Category.EXECUTION_ERROR, status="failed") for m in ids])
    await queue.close()
    await log.close()

    some = shell(eventrelay("redrive", "--config", str(config), "lambda-prod", "--status", "failed"), tmp_path)
    assert some.returncode == 0, some.stderr
    assert some.stderr.endswith("] 7/7\n")
    assert some.stdout == "re-drove 7 events of lambda-prod\n"

    none = shell(eventrelay("redrive", "--config", str(config), "lambda-prod", "--category", "timeout"), tmp_path)
    assert none.stderr == ""  # nothing to do: no bar at all
    assert none.stdout == (
        "re-drove 0 events of lambda-prod: no failed, discarded or retrying event of lambda-prod matches "
        "that filter (category timeout)\n"
    )


def test_listening_is_printed_only_once_the_port_is_bound(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*EVENTRELAY, "serve", "--config", str(config), "--port", str(port)],
            cwd=tmp_path,
            env=serve_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0
    assert "address already in use" in done.stdout + done.stderr
    assert "listening on" not in done.stdout + done.stderr


def test_handler_output_is_echoed_on_serves_output_with_a_localaws_config(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "printer.py").write_text(
        "def handle(event, context):\n    print('hello from the handler', event['messageId'])\n    return {}\n"
    )
    config = write_config(
        tmp_path, localaws={"functions_dir": str(functions), "functions": {"my-fn": {"handler": "printer.handle"}}}
    )
    port, out = free_port(), tmp_path / "serve.out"
    proc = spawn_eventrelay(
        ["serve", "--config", str(config), "--port", str(port)], cwd=tmp_path, env=serve_env(), log=out
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url + "/healthz", proc, out, START_TIMEOUT)
        basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        body = json.dumps({"userId": "u1", "event": "Echo", "messageId": "m-echo"}).encode()
        request = urllib_request(url + "/v1/track", body, {"Authorization": f"Basic {basic}"})
        assert request == 200
        deadline = time.monotonic() + START_TIMEOUT
        while "[my-fn] hello from the handler m-echo" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "[my-fn] hello from the handler m-echo" in out.read_text()
    finally:
        stop_process(proc, 30)


def urllib_request(url: str, body: bytes, headers: dict[str, str]) -> int:
    import urllib.request

    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)


def test_the_example_configuration_stands_on_its_own(tmp_path: Path) -> None:
    example = REPO / "examples" / "eventrelay.yaml"
    text = example.read_text()
    assert "DESIGN.md" not in text and "shared/" not in text  # no documents outside the repository
    assert yaml.safe_load(text)["storage"]["path"] not in ("./eventrelay-data", "eventrelay-data")  # not the demo's
    env = {**serve_env(), "EVENTRELAY_ADMIN_TOKEN": TOKEN, "WEB_WRITE_KEY": WRITE_KEY}
    done = subprocess.run(
        [*EVENTRELAY, "validate", "--config", str(example)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
