"""Retry now, as a person does it: an event whose handler raises waits for its next retry (hours
away); the page lists it with its last error, attempts and next attempt time, and shows the raised
traceback's log tail line by line; after the handler is
fixed, "Retry now" delivers it within seconds, exactly once. The CLI shows the same next attempt
time, and a redrive that finds nothing says why."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.support.process import free_port, stop_process
from tests.support.serve import EVENTRELAY, serve_env, spawn_eventrelay, wait_healthy

TOKEN = "retry-now-admin-token-0123456789"
WRITE_KEY = "retry-now-write-key-0123456789"
START_TIMEOUT = 60.0
RETRY_NOW_MS = 15_000  # "within seconds": the redrive, a claim and one invoke on a loaded machine
FIRST_ATTEMPT_MS = 60_000  # the first invoke starts an awslambdaric process
HANDLER = """
import os

HERE = {here!r}


def flaky(event, context):
    if os.path.exists(os.path.join(HERE, "BROKEN")):
        raise RuntimeError("boom until fixed")
    with open(os.path.join(HERE, "delivered.log"), "a") as f:
        f.write(event["messageId"] + "\\n")
    return {{"ok": True}}
"""
# The next retry is drawn from [0, 1 day]: far enough that only "Retry now" delivers within the test.
DELIVERY = "{retry_window: 4h, max_attempts: 50, backoff_base: 1d, backoff_cap: 1d}"


def write_config(tmp: Path) -> Path:
    functions = tmp / "functions"
    functions.mkdir()
    (functions / "handlers.py").write_text(HANDLER.format(here=str(functions)))
    (functions / "BROKEN").write_text("remove me to fix the handler")
    config = tmp / "eventrelay.yaml"
    config.write_text(f"""
workspace: {{id: ws_retry_now}}
storage: {{backend: sqlite, path: {tmp / "data"}}}
admin: {{token: {TOKEN}}}
sources: [{{name: web, write_key: {WRITE_KEY}}}]
localaws:
  functions_dir: {functions}
  functions: {{flaky: {{handler: handlers.flaky}}}}
  roles: {{invoker: {{}}}}
destinations:
  - name: raising
    settings: {{lambda: flaky, region: us-west-2, log_type: Tail,
               role_address: "arn:aws:iam::123456789012:role/invoker"}}
    delivery: {DELIVERY}
""")
    return config


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    config = write_config(tmp_path)
    port = free_port()
    out = tmp_path / "serve.out"
    proc = spawn_eventrelay(
        ["serve", "--config", str(config), "--port", str(port)], cwd=tmp_path, env=serve_env(), log=out
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_healthy, url + "/healthz", proc, out, START_TIMEOUT)
        yield url, tmp_path
    finally:
        await asyncio.to_thread(stop_process, proc, 30)


async def send(url: str, message_id: str) -> None:
    basic = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    body = {"userId": "u1", "event": "Order Completed", "messageId": message_id}
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/v1/track", json=body, headers={"Authorization": basic}) as r:
            assert r.status == 200, await r.text()


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVENTRELAY, *args], cwd=folder, env=serve_env(), capture_output=True, text=True, timeout=60)


async def test_retry_now_delivers_a_retrying_event_of_a_fixed_handler_within_seconds(
    server: tuple[str, Path], page: Page
) -> None:
    url, folder = server
    functions = folder / "functions"
    await send(url, "retry-1")
    await send(url, "retry-2")

    await page.goto(f"{url}/#token={TOKEN}")
    rows = page.locator("#retrying tbody tr")
    await expect(rows).to_have_count(2, timeout=FIRST_ATTEMPT_MS)
    first = page.locator('#retrying tr[data-message-id="retry-1"] td')
    await expect(first.nth(1)).to_contain_text("boom until fixed")  # the last error
    await expect(first.nth(2)).to_have_text("1")  # attempts
    await expect(first.nth(3)).to_have_text(re.compile(r"\d"))  # the next attempt's time
    # Lambda's Python runtime ends the traceback's lines with \r: the page shows them as lines
    tail = page.locator('#samples article[data-category="execution_error"] pre.log-tail').first
    await expect(tail).to_contain_text("Traceback (most recent call last):")
    shown = await tail.text_content() or ""  # a \r is drawn as a space (CSS): the text must hold \n
    assert "\r" not in shown and "[ERROR] RuntimeError: boom until fixed\nTraceback (most recent call last):\n" in shown

    listed = await asyncio.to_thread(cli, folder, "deliveries", "--config", str(folder / "eventrelay.yaml"))
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("retry-1"))
    assert "retrying" in row and "NEXT ATTEMPT" in listed.stdout
    when = datetime.strptime(" ".join(row.split()[8:10]), "%Y-%m-%d %H:%M:%S").timestamp()
    assert when > time.time()  # the CLI shows the same next attempt time, still ahead

    (functions / "BROKEN").unlink()  # fix the handler
    started = time.monotonic()
    await page.locator('#retrying tr[data-message-id="retry-1"]').get_by_role("button", name="Retry now").click()
    await expect(page.locator("#retry-result")).to_have_text("Re-drove 1 event.")
    delivered = page.locator('#destinations tr[data-destination="raising"] td.delivered')
    await expect(delivered).to_have_text("1", timeout=RETRY_NOW_MS)
    assert time.monotonic() - started < RETRY_NOW_MS / 1000
    await expect(rows).to_have_count(1)

    await page.get_by_role("button", name="Retry all now").click()
    await expect(page.locator("#retry-result")).to_have_text("Re-drove 1 event.")
    await expect(delivered).to_have_text("2", timeout=RETRY_NOW_MS)
    await expect(page.locator("#no-retrying")).to_be_visible()
    assert sorted((functions / "delivered.log").read_text().split()) == ["retry-1", "retry-2"]  # each once

    again = await asyncio.to_thread(cli, folder, "redrive", "--config", str(folder / "eventrelay.yaml"), "raising")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "re-drove 0 events of raising: no event of raising is failed, discarded or retrying"
