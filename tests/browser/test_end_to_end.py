"""End to end, as a person would do it: ``eventrelay serve`` with the local AWS endpoint, a raising
handler, a slow handler and a role whose trust wants another External ID; events sent over HTTP; the
page shows each failure's category, the raising handler's log tail, and after the handler is fixed
a Re-drive delivers every failed event exactly once. No secret appears in the page or the output.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.support.process import free_port, stop_process
from tests.support.serve import spawn_eventrelay

TOKEN = "e2e-admin-token-0123456789abcdef"
WRITE_KEY = "e2e-write-key-SECRET-0123456789"
WORKSPACE = "ws_e2e_browser"
EVENTS = 3
DEADLINE = 90.0  # seconds for start-up and for the failures to settle on a loaded 2-core machine
ROLE = "arn:aws:iam::123456789012:role/"
FAST_RETRIES = "{timeout: %s, retry_window: 2s, max_attempts: 2, backoff_base: 0.2s, backoff_cap: 0.5s}"

HANDLERS = """
import os
import time

HERE = {here!r}


def flaky(event, context):
    if os.path.exists(os.path.join(HERE, "BROKEN")):
        print("boom from handler", event.get("messageId"))
        raise RuntimeError("boom from handler")
    with open(os.path.join(HERE, "delivered.log"), "a") as f:
        f.write(event["messageId"] + "\\n")
    return {{"ok": True}}


def slow(event, context):
    time.sleep(4)
    return {{"ok": True}}


def ok(event, context):
    return {{"ok": True}}
"""


def write_setup(tmp: Path) -> Path:
    functions = tmp / "functions"
    functions.mkdir()
    (functions / "handlers.py").write_text(HANDLERS.format(here=str(functions)))
    (functions / "BROKEN").write_text("remove me to fix the handler")
    settings = "region: us-west-2, log_type: Tail"
    config = tmp / "eventrelay.yaml"
    config.write_text(f"""
workspace: {{id: {WORKSPACE}}}
storage: {{backend: sqlite, path: {tmp / "data"}}}
admin: {{token: {TOKEN}}}
sources: [{{name: web, write_key: {WRITE_KEY}}}]
localaws:
  functions_dir: {functions}
  functions:
    flaky: {{handler: handlers.flaky}}
    slow: {{handler: handlers.slow, timeout: 10}}
    ok: {{handler: handlers.ok}}
  roles:
    invoker: {{}}
    strict: {{external_id: someone-elses-id}}
destinations:
  - {{name: raising, settings: {{lambda: flaky, role_address: "{ROLE}invoker", {settings}}},
     delivery: {FAST_RETRIES % "5s"}}}
  - {{name: slow, settings: {{lambda: slow, role_address: "{ROLE}invoker", {settings}}},
     delivery: {FAST_RETRIES % "1s"}}}
  - {{name: denied, settings: {{lambda: ok, role_address: "{ROLE}strict", {settings}}},
     delivery: {FAST_RETRIES % "5s"}}}
""")
    return config


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Path, Path]]:
    config = write_setup(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(tmp_path)
    out = tmp_path / "serve.out"
    proc = spawn_eventrelay(["serve", "--config", str(config), "--port", str(port)], cwd=tmp_path, env=env, log=out)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await poll(lambda: healthy(http, url), "serve to answer /healthz", proc, out)
        yield url, tmp_path / "functions", out
    finally:
        await asyncio.to_thread(stop_process, proc, 30)


def tail(out: Path | None) -> str:
    return out.read_text()[-4000:] if out is not None and out.exists() else ""


async def healthy(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url + "/healthz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def poll(check: Any, what: str, proc: subprocess.Popen[bytes] | None = None, out: Path | None = None) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if await check():
            return
        if proc is not None and proc.poll() is not None:
            break
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{tail(out)}")


async def api(http: aiohttp.ClientSession, url: str, path: str) -> Any:
    async with http.get(url + path, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def error_categories(http: aiohttp.ClientSession, url: str, destination: str) -> set[str]:
    stats = await api(http, url, f"/api/v1/destinations/{destination}/stats?range=10m")
    return {e["category"] for e in stats["errors"]}


async def select(page: Page, destination: str) -> None:
    await page.locator(f'#destinations tr[data-destination="{destination}"]').click()
    await expect(page.locator("#detail-name")).to_have_text(destination)


@pytest.mark.slow
async def test_failures_are_explained_on_the_page_and_redrive_delivers_each_once(
    server: tuple[str, Path, Path], page: Page
) -> None:
    url, functions, out = server
    basic = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    ids = [f"e2e-{i}" for i in range(EVENTS)]
    async with aiohttp.ClientSession() as http:
        for mid in ids:
            body = {"userId": "u1", "event": "Order Completed", "messageId": mid, "properties": {"n": 1}}
            async with http.post(url + "/v1/track", json=body, headers={"Authorization": basic}) as r:
                assert r.status == 200, await r.text()

        async def raising_failed() -> bool:
            rows = await api(http, url, "/api/v1/deliveries?destination=raising&status=failed")
            return len(rows["deliveries"]) == EVENTS

        await poll(raising_failed, "the raising handler's events to be failed", out=out)
        await poll(lambda: has(http, url, "slow", "timeout"), "a timeout on the slow handler", out=out)
        await poll(lambda: has(http, url, "denied", "access_denied"), "AccessDenied on the strict role", out=out)
        samples_text = await (
            await http.get(url + "/api/v1/destinations/raising/samples", headers={"Authorization": f"Bearer {TOKEN}"})
        ).text()

    await page.goto(f"{url}/#token={TOKEN}")
    await select(page, "raising")
    await expect(page.locator('#errors tr[data-category="execution_error"] td.category')).to_have_text(
        "Execution Error"
    )
    sample = page.locator('#samples article[data-category="execution_error"]').first
    await expect(sample.locator("pre.log-tail")).to_contain_text("boom from handler")
    await expect(sample.locator("pre.sent")).to_contain_text("Order Completed")
    await expect(page.locator("#failed tbody tr")).to_have_count(EVENTS)

    await select(page, "slow")
    await expect(page.locator('#errors tr[data-category="timeout"] td.category')).to_have_text("Operation timed out")
    await select(page, "denied")
    await expect(page.locator('#errors tr[data-category="access_denied"] td.category')).to_have_text("AccessDenied")
    await expect(page.locator('#errors tr[data-category="access_denied"] td.hint')).to_contain_text(WORKSPACE)

    html = await page.content()
    (functions / "BROKEN").unlink()  # fix the handler
    await select(page, "raising")
    await page.locator("#redrive-all").click()
    await expect(page.locator("#redrive-result")).to_have_text(f"Re-drove {EVENTS} events.")
    delivered = page.locator('#destinations tr[data-destination="raising"] td.delivered')
    await expect(delivered).to_have_text(str(EVENTS), timeout=DEADLINE * 1000)

    delivered_ids = (functions / "delivered.log").read_text().split()
    assert sorted(delivered_ids) == sorted(ids)  # each failed event delivered exactly once
    output = out.read_text()
    for secret in (WRITE_KEY, TOKEN):
        for where, text in (("page", html), ("serve output", output), ("samples API", samples_text)):
            assert secret not in text, f"{where} shows a secret"
    assert "local-eventrelay-secret" not in samples_text + html


async def has(http: aiohttp.ClientSession, url: str, destination: str, category: str) -> bool:
    return category in await error_categories(http, url, destination)
