"""analytics.js in a real browser: the official analytics-next bundle (npm), loaded by a page on
another origin with its cdnURL pointed at eventrelay, fetches the settings endpoint, then sends
track/identify/page through CORS as ``text/plain``; the events are durable with their fields."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Page

from tests.e2e.test_segment_clients import PY_KEY, Server, server  # noqa: F401 - server is a fixture

BUNDLE_DIR = Path(__file__).parents[1] / "e2e" / "node" / "node_modules" / "@segment" / "analytics-next" / "dist"

PAGE = """<!doctype html><html><head><title>shop</title>
<script src="/ajs/umd/index.js"></script></head><body><script>
(async () => {
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load({writeKey: "%(key)s", cdnURL: "%(cdn)s"});
  await analytics.identify("browser-user", {plan: "pro"});
  await analytics.track("Browser Checkout", {total: 12.5});
  await analytics.page("Shop", "Cart");
  document.title = "sent";
})().catch(e => { document.title = "error: " + e; });
</script></body></html>"""


@pytest.fixture
async def site(server: Server) -> AsyncIterator[str]:  # noqa: F811 - the imported fixture
    if not (BUNDLE_DIR / "umd" / "index.js").exists():
        pytest.fail("analytics-next is missing: npm ci --prefix tests/e2e/node")
    app = web.Application()

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=PAGE % {"key": PY_KEY, "cdn": server.url}, content_type="text/html")

    app.router.add_get("/", index)
    app.router.add_static("/ajs/", BUNDLE_DIR)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"  # another origin than eventrelay's
    finally:
        await runner.cleanup()


async def test_analytics_js_in_chromium_delivers_through_cors(page: Page, site: str, server: Server) -> None:  # noqa: F811
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    await page.goto(site)
    await page.wait_for_function("document.title !== 'shop'")
    assert await page.title() == "sent"
    events = await server.stored("py", 3)
    by_type = {e["type"]: e for e in events}
    assert set(by_type) == {"identify", "track", "page"}, console
    track = by_type["track"]
    assert track["event"] == "Browser Checkout" and track["properties"]["total"] == 12.5
    assert track["userId"] == "browser-user" and track["anonymousId"]
    assert track["context"]["library"]["name"] == "analytics.js"
    assert track["context"]["page"]["url"].startswith(site)
    assert by_type["identify"]["traits"]["plan"] == "pro"
    assert by_type["page"]["name"] == "Cart"
    assert not [m for m in console if "CORS" in m], console
