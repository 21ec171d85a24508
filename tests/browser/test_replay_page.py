"""The replay form on the Event Delivery page, in a real headless Chromium: the archive's size, a
dry run's count, a replay started with its progress bar, and a refusal naming the field."""

from __future__ import annotations

import time

from playwright.async_api import Page, expect

from eventrelay.core.records import Accepted
from tests.admin.server import ADMIN_TOKEN, Served


async def test_a_person_dry_runs_then_replays_and_sees_the_progress(served: Served, page: Page) -> None:
    now = time.time()
    body = b'{"type":"track","event":"Order Completed","userId":"u1","messageId":"%d"}'
    await served.runtime.queue.append(
        [Accepted(f"m{i}", "web", "track", now - 60, body % i, ()) for i in range(25)]  # archived, routed nowhere
    )
    await page.goto(f"{served.url}/#token={ADMIN_TOKEN}")
    await expect(page.locator("#detail-name")).to_have_text("lambda-prod")
    await expect(page.locator("#archive-size")).to_contain_text("25 events")

    await page.locator("#replay-since").fill("1h")
    await page.locator("#replay-dry-run").click()
    await expect(page.locator("#replay-result")).to_contain_text("25 events would be replayed")

    await page.locator("#replay-where").fill("properties.x =")
    await page.locator("#replay-dry-run").click()
    await expect(page.locator("#replay-result")).to_contain_text("where: at character 15")

    await page.locator("#replay-where").fill("")
    await page.locator("#replay-start").click()
    await expect(page.locator("#replay-result")).to_contain_text("started")
    running = page.locator("#replay-running")
    await expect(running).to_be_visible()
    await expect(page.locator("#replay-counts")).to_contain_text("of 25 events")
    replay_id = await running.get_attribute("data-replay")
    assert replay_id is not None and replay_id.startswith("rp_")
    record = await served.runtime.replays.get(replay_id)
    assert (record.destination, record.matched) == ("lambda-prod", 25)
    await expect(page.locator("#replay-progress")).to_be_visible()


async def test_the_archive_line_follows_events_accepted_while_the_page_is_open(served: Served, page: Page) -> None:
    body = b'{"type":"track","event":"Signed Up","userId":"u2","messageId":"%d"}'
    await served.runtime.queue.append([Accepted("a0", "web", "track", time.time(), body % 0, ())])
    await page.goto(f"{served.url}/#token={ADMIN_TOKEN}")
    await expect(page.locator("#archive-size")).to_contain_text("1 events")
    await served.runtime.queue.append([Accepted(f"a{i}", "web", "track", time.time(), body % i, ()) for i in (1, 2)])
    await expect(page.locator("#archive-size")).to_contain_text("3 events", timeout=15_000)  # no reload
