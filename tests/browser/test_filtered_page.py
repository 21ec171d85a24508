"""Filtered events on the Event Delivery page: counted in a column of their own, never as failures."""

from __future__ import annotations

import time

from playwright.async_api import Page, expect

from eventrelay.core.outcome import Category
from tests.admin.server import ADMIN_TOKEN, Served
from tests.deliverylog.records import attempt


async def test_a_filtered_event_appears_as_filtered_not_as_failed(served: Served, page: Page) -> None:
    now = time.time()
    await served.runtime.log.record(
        [
            attempt("f1", Category.FILTERED, at=now - 30, filter='filters[0]: drop if event = "Order Completed"'),
            attempt("f2", Category.FILTERED, at=now - 20, filter='only: type = "identify"'),
            attempt("ok1", Category.DELIVERED, at=now - 10),
        ]
    )
    await page.goto(f"{served.url}/#token={ADMIN_TOKEN}")
    row = page.locator('#destinations tr[data-destination="lambda-prod"]')
    await expect(row.locator("td.filtered")).to_have_text("2")
    await expect(row.locator("td.delivered")).to_have_text("1")
    await expect(row.locator("td.failed")).to_have_text("0")
    await expect(page.locator("#destinations thead")).to_contain_text("Filtered")
    await expect(page.locator("#no-errors")).to_be_visible()  # a filtered event is not an error
