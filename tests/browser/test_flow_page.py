"""The page's flow-control section (``admin/static/flow.js``) in a real headless Chromium: a user
lane blocked behind an event being retried, and how many events it holds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from eventrelay.config.model import Config
from eventrelay.core.records import Accepted
from tests.admin.server import ADMIN_TOKEN, WRITE_KEY, Served, make_config, serve


def ordered_config(data: Path) -> Config:
    base = make_config(data).model_dump(mode="json")
    for dest in base["destinations"]:
        dest["ordering"] = "user"
    base["admin"]["token"] = ADMIN_TOKEN  # secrets dump masked: put them back
    base["sources"][0]["write_key"] = WRITE_KEY
    return Config.model_validate(base)


@pytest.fixture
async def ordered(tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(ordered_config(tmp_path / "data")) as s:
        yield s


async def test_a_person_sees_the_blocked_lane_and_the_events_it_holds(ordered: Served, page: Page) -> None:
    queue = ordered.runtime.queue
    body = b'{"type":"track","event":"Step","userId":"alice","messageId":"%s"}'
    await queue.append(
        [
            Accepted(f"a{n}", "web", "track", time.time(), body % f"a{n}".encode(), ("lambda-prod",), "u:alice")
            for n in range(3)
        ]
    )
    [head] = await queue.claim("lambda-prod", 10, 60.0)
    await queue.retry(head, time.time() + 600)  # the head waits ten minutes for its next attempt
    assert await queue.claim("lambda-prod", 10, 60.0) == []  # the two behind it are held

    await page.goto(f"{ordered.url}/#token={ADMIN_TOKEN}")
    lanes = page.locator("#flow-lanes tbody tr")
    await expect(lanes).to_have_count(1)
    await expect(lanes.first).to_contain_text("userId alice")
    await expect(lanes.first.locator("td.lane-events")).to_have_text("3")
    await expect(page.locator("#no-blocked-lanes")).to_be_hidden()
