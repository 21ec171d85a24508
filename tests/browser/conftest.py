"""Fixtures of the browser tests: Debian's Chromium (apt: chromium chromium-driver) driven by Playwright.

Playwright's own browser download is unreachable here, so it launches /usr/bin/chromium.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.admin.server import Served, make_config, serve
from tests.support.demo import Demo, running_demo

CHROMIUM = os.environ.get("EVENTRELAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
PAGE_TIMEOUT_MS = 20_000  # generous: a loaded 2-core machine


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(make_config(tmp_path / "data")) as s:
        yield s


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """``eventrelay serve`` without a config, as a newcomer runs it (delivering to the local Lambda runtime)."""
    with running_demo(tmp_path) as d:
        yield d


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per test, before any I/O of the test
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    async with async_playwright() as p:
        # launch() gives every run a fresh temporary profile (user data dir).
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    p = await context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield p
    finally:
        await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
